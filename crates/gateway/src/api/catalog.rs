//! A shop's products and knowledge documents in the operator API. Operators read; owners
//! and admins edit and delete. A shop system keeps products live with a tenant API token
//! (`Authorization: Bearer sbk_…`): `PUT /products/{sku}` writes a product, `PATCH` with
//! `{"stock": n}` its stock alone.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::{ApiToken, Doc, DocSummary, DocsToRemove, ProductRecord, Upserted};
use uuid::Uuid;

use super::Caller;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/products", get(products))
        .route(
            "/api/v1/products/{sku}",
            get(product)
                .put(put_product)
                .patch(patch_stock)
                .delete(delete_product),
        )
        .route("/api/v1/documents", get(documents).post(add_document))
        .route(
            "/api/v1/documents/{id}",
            get(document).put(edit_document).delete(delete_document),
        )
        .route("/api/v1/knowledge/search", get(search))
}

/// Who writes to the catalogue: a signed-in user, or the tenant's own system with an API
/// token.
enum CatalogCaller {
    User(Caller),
    System(ApiToken),
}

impl CatalogCaller {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::User(c) => c.user().tenant_id,
            Self::System(t) => t.tenant_id,
        }
    }

    /// The audit log's actor of a change; only owners, admins and API tokens change.
    fn writer(&self) -> Result<String, ApiError> {
        match self {
            Self::User(c) => Ok(c.admin()?.id.to_string()),
            Self::System(t) => Ok(format!("api-token:{}", t.id)),
        }
    }
}

impl FromRequestParts<AppState> for CatalogCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        match crate::bearer_token(&parts.headers) {
            Some(t) if t.starts_with(switchboard_store::API_TOKEN_PREFIX) => s
                .services
                .store
                .api_token(t)
                .await?
                .map(Self::System)
                .ok_or(ApiError::Unauthorized(
                    "the API token is unknown or revoked",
                )),
            _ => Caller::from_request_parts(parts, s).await.map(Self::User),
        }
    }
}

async fn products(
    State(s): State<AppState>,
    caller: CatalogCaller,
) -> Result<Json<Vec<ProductRecord>>, ApiError> {
    Ok(Json(s.services.store.products(caller.tenant_id()).await?))
}

async fn product(
    State(s): State<AppState>,
    caller: CatalogCaller,
    Path(sku): Path<String>,
) -> Result<Json<ProductRecord>, ApiError> {
    Ok(Json(
        s.services.store.product(caller.tenant_id(), &sku).await?,
    ))
}

/// The whole product: 201 when it is new, 200 otherwise.
async fn put_product(
    State(s): State<AppState>,
    caller: CatalogCaller,
    Path(sku): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ProductRecord>), ApiError> {
    let actor = caller.writer()?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let row = switchboard_import::parse_product(&sku, body)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tenant = caller.tenant_id();
    let done = s
        .services
        .store
        .put_product(tenant, &row.into(), &actor)
        .await?;
    let status = if done == Upserted::Added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(s.services.store.product(tenant, &sku).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stock {
    stock: u32,
}

async fn patch_stock(
    State(s): State<AppState>,
    caller: CatalogCaller,
    Path(sku): Path<String>,
    body: Bytes,
) -> Result<Json<ProductRecord>, ApiError> {
    let actor = caller.writer()?;
    let Stock { stock } =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let stock =
        i32::try_from(stock).map_err(|_| ApiError::BadRequest("stock is too large".into()))?;
    let tenant = caller.tenant_id();
    s.services
        .store
        .set_stock(tenant, &sku, stock, &actor)
        .await?;
    Ok(Json(s.services.store.product(tenant, &sku).await?))
}

/// A person's decision: a shop system's token writes products and stock, it does not
/// delete them.
async fn delete_product(
    State(s): State<AppState>,
    caller: CatalogCaller,
    Path(sku): Path<String>,
) -> Result<StatusCode, ApiError> {
    if matches!(caller, CatalogCaller::System(_)) {
        return Err(ApiError::Forbidden(
            "an API token writes products and stock; deleting one takes an owner or admin",
        ));
    }
    let actor = caller.writer()?;
    s.services
        .store
        .remove_product(caller.tenant_id(), &sku, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn documents(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<DocSummary>>, ApiError> {
    Ok(Json(
        s.services.store.documents(caller.user().tenant_id).await?,
    ))
}

async fn document(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Doc>, ApiError> {
    Ok(Json(
        s.services
            .store
            .document(caller.user().tenant_id, id)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocEdit {
    title: String,
    #[serde(default)]
    keywords: String,
    body: String,
}

async fn add_document(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Doc>), ApiError> {
    let admin = caller.admin()?;
    let doc: DocEdit =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let added = s
        .services
        .store
        .add_document(
            admin.tenant_id,
            (&doc.title, &doc.keywords, &doc.body),
            &admin.id.to_string(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

async fn edit_document(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Json<Doc>, ApiError> {
    let admin = caller.admin()?;
    let edit: DocEdit =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(
        s.services
            .store
            .update_document(
                admin.tenant_id,
                id,
                (&edit.title, &edit.keywords, &edit.body),
                &admin.id.to_string(),
            )
            .await?,
    ))
}

async fn delete_document(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let admin = caller.admin()?;
    s.services
        .store
        .remove_documents(admin.tenant_id, DocsToRemove::Id(id), &admin.id.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
}

/// What retrieval finds for a question, with its scores, as `switchboard kb search` prints.
async fn search(
    State(s): State<AppState>,
    caller: Caller,
    Query(SearchQuery { q }): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let found = s
        .services
        .store
        .search_knowledge(caller.user().tenant_id, &q, 10)
        .await?;
    Ok(Json(json!(
        found
            .iter()
            .map(|f| json!({"reference": f.reference, "title": f.title,
                            "coverage": f.coverage, "rank": f.rank}))
            .collect::<Vec<_>>()
    )))
}
