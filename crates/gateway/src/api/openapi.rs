//! The API described as OpenAPI 3.1. The document is kept by hand; the test below holds it
//! to the routes this module really serves.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

use crate::AppState;

const DOC: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { ([(CONTENT_TYPE, "application/json")], DOC) }),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `(method, path)` routed in the API's sources.
    fn routed() -> BTreeSet<(String, String)> {
        let sources = [
            include_str!("auth.rs"),
            include_str!("catalog.rs"),
            include_str!("conversations.rs"),
            include_str!("events.rs"),
            include_str!("leads.rs"),
            include_str!("openapi.rs"),
            include_str!("settings.rs"),
            include_str!("suggestions.rs"),
            include_str!("users.rs"),
        ];
        let mut out = BTreeSet::new();
        for src in sources {
            for chunk in src.split(".route(").skip(1) {
                let Some(path) = chunk.split('"').nth(1) else {
                    continue;
                };
                if !path.starts_with("/api/v1/") {
                    continue;
                }
                let head: String = chunk.chars().take(200).collect();
                let after = head.split_once(path).map(|(_, a)| a).unwrap_or("");
                for m in ["get", "post", "put", "patch", "delete"] {
                    if [" ", ".", "("]
                        .iter()
                        .any(|p| after.contains(&format!("{p}{m}(")))
                    {
                        out.insert((m.to_owned(), path.to_owned()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_document_lists_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(super::DOC).unwrap();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for m in ops.as_object().unwrap().keys() {
                documented.insert((m.clone(), path.clone()));
            }
        }
        let routed = routed();
        assert!(
            routed.len() > 20,
            "the route scan found too little: {routed:?}"
        );
        assert_eq!(documented, routed, "openapi.json and the routes disagree");
    }
}
