//! Embeds the whole platform in a Rust program (in-memory store and discovery, local
//! processes, the built-in router), builds the sample app into a slug, deploys it and
//! routes a request to it. Run: `cargo run -p deis-examples --example embed_platform`.
use deis_api::platform::{Backends, Platform, PlatformConfig};
use deis_api::wire::{BuildRequest, RegisterRequest};
use deis_builder::BuildRequest as Source;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::temp_dir().join(format!("deis-embed-{}", std::process::id()));
    let config = PlatformConfig::ephemeral(&data, "embedded.test");
    let platform = Platform::start(config, Backends::in_memory()).await?;
    let deis = platform.controller.clone();
    let new_user = RegisterRequest {
        username: "ada".into(),
        password: "pw-ada".into(),
        ..Default::default()
    };
    let user = deis
        .register(
            None,
            &RegisterRequest {
                email: "ada@example.com".into(),
                ..new_user
            },
        )
        .await?;
    let app = deis.create_app(&user, Some("hello")).await?;
    let source = format!("{}/apps/python-env", env!("CARGO_MANIFEST_DIR"));
    let work = data.join("src");
    std::fs::create_dir_all(&work)?;
    for file in ["Procfile", "app.py"] {
        std::fs::copy(format!("{source}/{file}"), work.join(file))?;
    }
    let request = Source {
        app: app.id.clone(),
        sha: "abc1234".into(),
        source_dir: work,
        env: Default::default(),
    };
    // The platform's own builder stores the slug in the platform's slug store, where the
    // local scheduler fetches it from.
    let built = platform
        .builder()
        .build(&request, &tokio::sync::mpsc::channel(1024).0)
        .await?;
    let image = built.slug;
    deis.create_build(
        &user,
        &app.id,
        &BuildRequest {
            image,
            procfile: built.procfile,
            ..Default::default()
        },
    )
    .await?;
    let url = format!("http://{}/", platform.router_addr());
    let client = reqwest::Client::new();
    for _ in 0..50 {
        let answer = client
            .get(&url)
            .header("Host", "hello.embedded.test")
            .send()
            .await?;
        if answer.status() == 200 {
            print!("{}", answer.text().await?);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    platform.shutdown().await;
    Ok(std::fs::remove_dir_all(data)?)
}
