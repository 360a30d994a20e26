//! Django REST Framework pagination: `?page=N&page_size=N`, answered as
//! `{"count","next","previous","results"}` with absolute URLs.

use super::errors::ApiError;
use super::AppState;
use crate::controller::ServiceError;
use crate::wire::Paginated;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use deis_core::model::{Page, PageRequest};

/// The page a list request asks for, with what is needed to link its neighbours.
#[derive(Debug, Clone)]
pub struct Pager {
    page: u64,
    size: u64,
    size_given: bool,
    base: String,
    other_query: Vec<(String, String)>,
}

fn parse_positive(name: &str, value: &str) -> Result<u64, ApiError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::Service(ServiceError::field(
            name,
            "invalid",
            format!("{name} must be a positive integer, got {value:?}."),
        ))),
    }
}

impl FromRequestParts<AppState> for Pager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let settings = state.settings();
        let mut page = 1;
        let mut size = settings.page_size;
        let mut size_given = false;
        let mut other_query = Vec::new();
        for (key, value) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        {
            match key.as_ref() {
                "page" => page = parse_positive("page", &value)?,
                "page_size" => {
                    size = parse_positive("page_size", &value)?.min(settings.max_page_size);
                    size_given = true;
                }
                _ => other_query.push((key.into_owned(), value.into_owned())),
            }
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = match parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
        {
            Some("https") => "https",
            _ => "http",
        };
        Ok(Pager {
            page,
            size,
            size_given,
            base: format!("{scheme}://{host}{}", parts.uri.path()),
            other_query,
        })
    }
}

impl Pager {
    /// The store request for this page.
    pub fn request(&self) -> PageRequest {
        PageRequest {
            offset: (self.page - 1).saturating_mul(self.size),
            limit: self.size,
        }
    }

    fn link(&self, page: u64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.other_query {
            query.append_pair(k, v);
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        if self.size_given {
            query.append_pair("page_size", &self.size.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{query}", self.base)
        }
    }

    /// The response body for a page of results; 404 for a page past the end.
    pub fn respond<T>(&self, page: Page<T>) -> Result<Paginated<T>, ApiError> {
        if self.page > 1 && self.request().offset >= page.total {
            return Err(ApiError::Service(ServiceError::NotFound(
                "Invalid page.".into(),
            )));
        }
        let shown = self.request().offset + page.items.len() as u64;
        Ok(Paginated {
            count: page.total,
            next: (shown < page.total).then(|| self.link(self.page + 1)),
            previous: (self.page > 1).then(|| self.link(self.page - 1)),
            results: page.items,
        })
    }
}
