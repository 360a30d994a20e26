//! The OpenAPI 3 document, generated from the route table ([`crate::http::routes::ROUTES`])
//! that also builds the router, and from the request and response types themselves
//! (`utoipa::ToSchema`), so it cannot drift from the code.
//!
//! The deis-core model types do not derive `ToSchema` (deis-core stays free of such
//! dependencies); this module describes them with mirror structs, and a test checks that
//! each mirror has exactly the fields the real type serializes.

use crate::http::routes::{Auth, Body, Route, ROUTES};
use crate::wire;
use std::collections::BTreeMap;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, RefOr, Required,
};
/// Mirrors of the deis-core model types, for the document only.
pub mod models {
    #![allow(missing_docs, dead_code)]
    use std::collections::BTreeMap;
    use utoipa::ToSchema;

    /// A user (`deis_core::model::User`).
    #[derive(ToSchema)]
    #[schema(as = User)]
    pub struct UserDoc {
        pub id: u64,
        pub username: String,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        pub is_superuser: bool,
        pub is_staff: bool,
        pub is_active: bool,
        pub last_login: Option<String>,
        pub date_joined: String,
    }

    /// An app (`deis_core::model::App`).
    #[derive(ToSchema)]
    #[schema(as = App)]
    pub struct AppDoc {
        pub uuid: String,
        pub id: String,
        pub owner: String,
        pub url: String,
        pub structure: BTreeMap<String, u32>,
        pub created: String,
        pub updated: String,
    }

    /// A build (`deis_core::model::Build`).
    #[derive(ToSchema)]
    #[schema(as = Build)]
    pub struct BuildDoc {
        pub uuid: String,
        pub app: String,
        pub owner: String,
        pub image: String,
        pub sha: String,
        pub procfile: BTreeMap<String, String>,
        pub dockerfile: String,
        pub created: String,
        pub updated: String,
    }

    /// A config revision (`deis_core::model::Config`).
    #[derive(ToSchema)]
    #[schema(as = Config)]
    pub struct ConfigDoc {
        pub uuid: String,
        pub app: String,
        pub owner: String,
        pub revision: u64,
        pub values: BTreeMap<String, String>,
        pub memory: BTreeMap<String, String>,
        pub cpu: BTreeMap<String, u32>,
        pub tags: BTreeMap<String, String>,
        pub created: String,
        pub updated: String,
    }

    /// A release (`deis_core::model::Release`).
    #[derive(ToSchema)]
    #[schema(as = Release)]
    pub struct ReleaseDoc {
        pub uuid: String,
        pub app: String,
        pub owner: String,
        pub version: u64,
        pub summary: String,
        pub config: String,
        pub build: Option<String>,
        pub created: String,
        pub updated: String,
    }

    /// An SSH key (`deis_core::model::Key`).
    #[derive(ToSchema)]
    #[schema(as = Key)]
    pub struct KeyDoc {
        pub uuid: String,
        pub id: String,
        pub owner: String,
        pub public: String,
        pub fingerprint: String,
        pub created: String,
        pub updated: String,
    }

    /// A custom domain (`deis_core::model::Domain`).
    #[derive(ToSchema)]
    #[schema(as = Domain)]
    pub struct DomainDoc {
        pub uuid: String,
        pub app: String,
        pub owner: String,
        pub domain: String,
        pub created: String,
        pub updated: String,
    }

    /// A certificate (`deis_core::model::Certificate`); the PEM texts are write-only.
    #[derive(ToSchema)]
    #[schema(as = Certificate)]
    pub struct CertificateDoc {
        pub uuid: String,
        pub owner: String,
        pub common_name: String,
        pub expires: String,
        pub created: String,
        pub updated: String,
    }

    /// A push record (`deis_core::model::Push`).
    #[derive(ToSchema)]
    #[schema(as = Push)]
    pub struct PushDoc {
        pub uuid: String,
        pub app: String,
        pub owner: String,
        pub sha: String,
        pub fingerprint: String,
        pub receive_user: String,
        pub receive_repo: String,
        pub ssh_connection: String,
        pub ssh_original_command: String,
        pub created: String,
        pub updated: String,
    }
}

/// The component schemas, by name.
pub fn schemas() -> BTreeMap<String, RefOr<Schema>> {
    let components = ComponentsBuilder::new()
        .schema_from::<models::UserDoc>()
        .schema_from::<models::AppDoc>()
        .schema_from::<models::BuildDoc>()
        .schema_from::<models::ConfigDoc>()
        .schema_from::<models::ReleaseDoc>()
        .schema_from::<models::KeyDoc>()
        .schema_from::<models::DomainDoc>()
        .schema_from::<models::CertificateDoc>()
        .schema_from::<models::PushDoc>()
        .schema_from::<wire::Container>()
        .schema_from::<wire::RegisterRequest>()
        .schema_from::<wire::LoginRequest>()
        .schema_from::<wire::TokenResponse>()
        .schema_from::<wire::CancelRequest>()
        .schema_from::<wire::PasswdRequest>()
        .schema_from::<wire::StatusResponse>()
        .schema_from::<wire::TokensRequest>()
        .schema_from::<wire::CreateAppRequest>()
        .schema_from::<wire::TransferRequest>()
        .schema_from::<wire::BuildRequest>()
        .schema_from::<wire::RollbackRequest>()
        .schema_from::<wire::VersionResponse>()
        .schema_from::<wire::RunCommandRequest>()
        .schema_from::<wire::DomainRequest>()
        .schema_from::<wire::UsernameRequest>()
        .schema_from::<wire::PermsResponse>()
        .schema_from::<wire::AdminPerm>()
        .schema_from::<wire::KeyRequest>()
        .schema_from::<wire::CertificateRequest>()
        .schema_from::<wire::PushHookRequest>()
        .schema_from::<wire::BuildHookRequest>()
        .schema_from::<wire::BuildHookResponse>()
        .schema_from::<wire::ConfigHookRequest>()
        .schema_from::<wire::KeyHookResponse>()
        .schema_from::<wire::AuthHookRequest>()
        .schema_from::<wire::AuthHookResponse>()
        .schema_from::<wire::AppsHookResponse>()
        .build();
    components.schemas.into_iter().collect()
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn page_of(name: &str) -> Schema {
    let nullable_url = || {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
            .build()
    };
    ObjectBuilder::new()
        .property("count", ObjectBuilder::new().schema_type(Type::Integer))
        .property("next", nullable_url())
        .property("previous", nullable_url())
        .property(
            "results",
            ArrayBuilder::new().items(reference(name)).build(),
        )
        .required("count")
        .required("next")
        .required("previous")
        .required("results")
        .into()
}

/// The JSON schema and content type of a body, or `None` for no body.
fn content_of(body: Body) -> Option<(&'static str, RefOr<Schema>)> {
    match body {
        Body::Empty => None,
        Body::One(name) => Some(("application/json", reference(name))),
        Body::Page(name) => Some(("application/json", RefOr::T(page_of(name)))),
        Body::List(name) => Some((
            "application/json",
            RefOr::T(ArrayBuilder::new().items(reference(name)).build().into()),
        )),
        Body::Text => Some((
            "text/plain",
            RefOr::T(ObjectBuilder::new().schema_type(Type::String).into()),
        )),
        Body::Json => Some(("application/json", RefOr::T(Schema::default()))),
    }
}

/// The names of a path's `{parameters}`.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn http_method(route: &Route) -> HttpMethod {
    match route.verb {
        crate::http::routes::Verb::Get => HttpMethod::Get,
        crate::http::routes::Verb::Post => HttpMethod::Post,
        crate::http::routes::Verb::Delete => HttpMethod::Delete,
    }
}

fn error_response(description: &str) -> utoipa::openapi::response::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .property("detail", ObjectBuilder::new().schema_type(Type::String))
                        .build(),
                ))))
                .build(),
        )
        .build()
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let mut success = ResponseBuilder::new().description(route.summary);
    if let Some((content_type, schema)) = content_of(route.response) {
        success = success.content(
            content_type,
            ContentBuilder::new().schema(Some(schema)).build(),
        );
    }
    if route.creates_release {
        success = success.header(
            "Deis-Release",
            utoipa::openapi::header::HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("The new release's version"))
                .build(),
        );
    }
    let mut responses = ResponsesBuilder::new().response(route.status.to_string(), success.build());
    if route.request != Body::Empty {
        responses = responses.response(
            "400",
            error_response("Invalid input: {\"<field>\": [\"<message>\"]} or {\"detail\"}"),
        );
    }
    match route.auth {
        Auth::Public => {}
        Auth::Token | Auth::Builder => {
            responses = responses
                .response("401", error_response("Not authenticated"))
                .response("403", error_response("Not allowed"));
        }
    }
    if !path_parameters(route.path).is_empty() {
        responses = responses.response("404", error_response("Not found"));
    }
    let mut builder = OperationBuilder::new()
        .operation_id(Some(route.operation))
        .summary(Some(route.summary))
        .tag(route.tag)
        .responses(responses.build());
    for name in path_parameters(route.path) {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if matches!(route.response, Body::Page(_)) {
        for name in ["page", "page_size"] {
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer))),
            );
        }
    }
    if let Some((content_type, schema)) = content_of(route.request) {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    content_type,
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
                .build(),
        ));
    }
    match route.auth {
        Auth::Public => {}
        Auth::Token => {
            builder = builder.security(SecurityRequirement::new("token", Vec::<String>::new()))
        }
        Auth::Builder => {
            builder = builder.security(SecurityRequirement::new("builder", Vec::<String>::new()))
        }
    }
    builder.build()
}

/// The OpenAPI document of the API.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        paths = paths.path(
            route.path,
            PathItem::new(http_method(route), operation(route)),
        );
    }
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`token <40 hex characters>`",
            ))),
        )
        .security_scheme(
            "builder",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Deis-Builder-Auth"))),
        );
    for (name, schema) in schemas() {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Deis controller API")
                .version(crate::http::API_VERSION)
                .description(Some(
                    "The Deis v1 REST API (v1.7). Every path also answers without its trailing slash.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}
