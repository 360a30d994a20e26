//! Starts the API on loopback, seeded with one user, one app with a deployed image, and
//! prints `READY <address> <token> <app>` — for `benches/wrk.sh`. The store is the URL in
//! `DEIS_BENCH_STORE` (e.g. `sqlite:///tmp/bench/deis.db`; default `memory://`); the
//! scheduler and discovery are in memory.
//!
//! Run: `cargo run --release -p deis-api --example bench_server -- [port]`

use deis_api::wire::{BuildRequest, RegisterRequest};
use deis_api::{Controller, Settings};
use std::io::Write;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let store_url = std::env::var("DEIS_BENCH_STORE").unwrap_or_else(|_| "memory://".into());
    let store = deis_store::open_store(&store_url).await?;
    let controller = Arc::new(Controller::new(
        store,
        Arc::new(deis_core::memory::MemoryScheduler::new()),
        Arc::new(deis_core::memory::MemoryDiscovery::new()),
        Arc::new(deis_api::MemoryLogs::default()),
        Settings {
            platform_domain: "bench.test".into(),
            ..Settings::default()
        },
    ));
    let user = controller
        .register(
            None,
            &RegisterRequest {
                username: "bench".into(),
                password: "bench-password".into(),
                email: "bench@bench.test".into(),
                ..RegisterRequest::default()
            },
        )
        .await?;
    let token = controller.login("bench", "bench-password").await?;
    let app = controller.create_app(&user, Some("bench-app")).await?;
    controller
        .create_build(
            &user,
            &app.id,
            &BuildRequest {
                image: "deis/example-go:latest".into(),
                ..BuildRequest::default()
            },
        )
        .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    println!("READY {address} {token} {}", app.id);
    std::io::stdout().flush()?;
    axum::serve(listener, deis_api::http::router(controller)).await?;
    Ok(())
}
