//! `deis`, the end-user command line: `deis help` lists the commands.

#[tokio::main]
async fn main() {
    let env = deis_cli::CliEnv::from_process();
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let code = deis_cli::run(args, &env, &mut out, &mut err).await;
    std::process::exit(code);
}
