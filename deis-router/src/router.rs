//! [`BuiltinRouter`]: the `Router` whose table is swapped atomically under traffic.

use crate::config::{ListenerKind, ListenerOptions, RouterConfig};
use crate::metrics::Metrics;
use crate::proxy::Shared;
use crate::server::{self, Listening};
use crate::table::Compiled;
use crate::tls::{self, SniResolver};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use deis_core::route::RouteTable;
use deis_core::{Error, Result, Router};
use http::HeaderValue;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const BACKEND: &str = "builtin";

/// The built-in router: a reverse proxy routing by host name from the last applied table.
///
/// Clones share the same table, metrics and upstream connection pool.
#[derive(Clone)]
pub struct BuiltinRouter {
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    apply_lock: Arc<Mutex<()>>,
}

impl fmt::Debug for BuiltinRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltinRouter")
            .field("revision", &self.shared.table.load().table.revision)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl BuiltinRouter {
    /// A router with an empty table. Fails when the platform certificate is not a valid PEM
    /// pair (the error names the problem, never the key).
    pub fn new(config: RouterConfig) -> Result<Self> {
        let platform = match &config.platform_certificate {
            Some(pair) => Some(tls::certified_key("platform_certificate", pair)?),
            None => None,
        };
        let table = Arc::new(ArcSwap::from_pointee(Compiled::default()));
        let tls = tls::server_config(SniResolver {
            table: table.clone(),
            platform,
        })
        .map_err(|e| Error::backend(BACKEND, e.to_string()))?;
        let hsts = config
            .hsts
            .as_ref()
            .and_then(|hsts| HeaderValue::from_str(&hsts.header_value()).ok());
        let builder = Arc::new(server::http_builder(config.header_read_timeout));
        Ok(Self {
            shared: Arc::new(Shared {
                table,
                config,
                metrics: Metrics::new(),
                hsts,
            }),
            tls,
            builder,
            apply_lock: Arc::default(),
        })
    }

    /// Binds a listener and starts serving on it in the background (needs a Tokio runtime).
    pub async fn listen(&self, options: ListenerOptions) -> Result<Listening> {
        let listener = TcpListener::bind(options.addr)
            .await
            .map_err(|e| Error::Unavailable {
                backend: BACKEND,
                message: format!("cannot listen on {}: {e}", options.addr),
            })?;
        let endpoint = server::Endpoint {
            shared: self.shared.clone(),
            kind: options.kind,
            proxy_protocol: options.proxy_protocol,
            tls: (options.kind == ListenerKind::Https).then(|| TlsAcceptor::from(self.tls.clone())),
            builder: self.builder.clone(),
        };
        server::spawn(listener, endpoint).map_err(|e| Error::backend(BACKEND, e))
    }

    /// The metrics in the Prometheus text format, as the admin listener's `/metrics` serves.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render()
    }
}

#[async_trait]
impl Router for BuiltinRouter {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        let _serial = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.shared.table.load_full();
        if previous.table != *table {
            let compiled = Compiled::build(table, &previous, &self.shared.metrics)?;
            self.shared.table.store(Arc::new(compiled));
        }
        self.shared.metrics.applied(table.revision);
        Ok(())
    }

    async fn current(&self) -> Result<RouteTable> {
        Ok(self.shared.table.load().table.clone())
    }
}
