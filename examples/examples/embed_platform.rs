//! Embeds the whole platform in a Rust program (in-memory store and discovery, apps as
//! local processes, the built-in router), deploys the sample app from its directory
//! through the real build pipeline and routes a request to it through the router.
//! Run: `cargo run -p deis-examples --example embed_platform`.
use deis_api::platform::Platform;
use deis_api::wire::RegisterRequest;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::temp_dir().join(format!("deis-embed-{}", std::process::id()));
    let platform = Platform::embedded(&data).await?;
    let deis = &platform.controller;
    let signup = RegisterRequest::new("ada", "pw-ada", "ada@example.com");
    let user = deis.register(None, &signup).await?;
    let app = deis.create_app(&user, Some("hello")).await?;
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/apps/python-env");
    let release = platform.deploy_dir(&user, &app.id, source).await?;
    eprintln!(
        "deployed {} v{}: {}",
        app.id, release.version, release.summary
    );
    let answer = platform.get(&platform.app_host(&app.id), "/").await?;
    print!("{}", answer.error_for_status()?.text().await?);
    platform.shutdown().await;
    std::fs::remove_dir_all(data)?;
    Ok(())
}
