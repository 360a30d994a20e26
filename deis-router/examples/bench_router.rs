//! Runs the built-in router on one thread for benchmarks (`benches/compare.sh` drives it).
//!
//! It routes `--host` (default `app1.example.test`) to the `--backend` endpoints and, with
//! `--churn`, applies a new table ten times a second, rotating the endpoint set among the
//! backends, to measure errors while routes change under load.
//!
//! ```text
//! cargo run --release -p deis-router --example bench_router -- \
//!     --listen 127.0.0.1:18090 --backend 127.0.0.1:18081 --backend 127.0.0.1:18082 [--churn]
//! ```

use deis_core::route::{AppRoute, RouteTable};
use deis_core::Router;
use deis_router::{BuiltinRouter, ListenerKind, ListenerOptions, RouterConfig};
use std::time::Duration;

struct Args {
    listen: String,
    admin: Option<String>,
    host: String,
    backends: Vec<String>,
    churn: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        listen: "127.0.0.1:18090".into(),
        admin: None,
        host: "app1.example.test".into(),
        backends: Vec::new(),
        churn: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => args.listen = value()?,
            "--admin" => args.admin = Some(value()?),
            "--host" => args.host = value()?,
            "--backend" => args.backends.push(value()?),
            "--churn" => args.churn = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    if args.backends.is_empty() {
        anyhow::bail!("give at least one --backend host:port");
    }
    Ok(args)
}

fn table(revision: u64, host: &str, endpoints: &[String]) -> RouteTable {
    let mut route = AppRoute::default();
    route.domains.insert(host.to_string());
    for (i, endpoint) in endpoints.iter().enumerate() {
        route
            .endpoints
            .insert(format!("app1_v1.web.{}", i + 1), endpoint.clone());
    }
    let mut table = RouteTable {
        revision,
        ..RouteTable::default()
    };
    table.apps.insert("app1".into(), route);
    table
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let router = BuiltinRouter::new(RouterConfig::default())?;
        router.apply(&table(1, &args.host, &args.backends)).await?;
        let listening = router
            .listen(ListenerOptions::new(
                ListenerKind::Http,
                args.listen.parse()?,
            ))
            .await?;
        if let Some(admin) = &args.admin {
            router
                .listen(ListenerOptions::new(ListenerKind::Admin, admin.parse()?))
                .await?;
        }
        eprintln!("bench_router listening on {}", listening.local_addr());
        if args.churn {
            let router = router.clone();
            let backends = args.backends.clone();
            let host = args.host.clone();
            tokio::spawn(async move {
                let mut revision = 1u64;
                let mut ticker = tokio::time::interval(Duration::from_millis(100));
                loop {
                    ticker.tick().await;
                    revision += 1;
                    // Rotate through every non-empty prefix of a rotated backend list.
                    let n = backends.len();
                    let mut set: Vec<String> = (0..n)
                        .map(|i| backends[(i + revision as usize) % n].clone())
                        .collect();
                    set.truncate(1 + (revision as usize) % n);
                    if let Err(error) = router.apply(&table(revision, &host, &set)).await {
                        eprintln!("apply failed: {error}");
                    }
                }
            });
        }
        tokio::signal::ctrl_c().await?;
        listening.shutdown(Duration::from_secs(1)).await;
        anyhow::Ok(())
    })
}
