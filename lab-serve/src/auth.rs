//! Who may read: anyone on a loopback address without a token; with a
//! token (required off loopback), only requests carrying
//! `Authorization: Bearer TOKEN`. The token is compared in constant time
//! (its blake3 hash against the given one's, so neither its content nor
//! its length shows in the timing) and never written anywhere: not in an
//! answer, a log line or an error.

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ServeError;

/// The bearer token, kept as its hash.
#[derive(Clone)]
pub struct Token(blake3::Hash);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// A token whose text is `secret`.
    pub fn new(secret: &str) -> Token {
        Token(blake3::hash(secret.as_bytes()))
    }

    /// The token for a server on `addr`: read from `file` (surrounding
    /// whitespace dropped); none without a file on loopback; an error
    /// without one elsewhere, or when the file is unreadable or empty.
    pub fn for_address(addr: SocketAddr, file: Option<&Path>) -> Result<Option<Token>, ServeError> {
        let Some(path) = file else {
            return if addr.ip().is_loopback() { Ok(None) } else { Err(ServeError::TokenRequired(addr)) };
        };
        let bad = |reason: String| ServeError::TokenFile { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(bad("it is empty".into()));
        }
        Ok(Some(Token::new(secret)))
    }

    /// Whether `given` is the token; constant time (blake3's `Hash`
    /// equality is).
    pub fn matches(&self, given: &str) -> bool {
        blake3::hash(given.as_bytes()) == self.0
    }
}

/// The middleware: passes requests with the right bearer token, answers
/// 401 to others. Without a token, everything passes.
pub async fn require(State(token): State<Option<Token>>, request: Request, next: Next) -> Response {
    let Some(token) = token else { return next.run(request).await };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match given {
        Some(given) if token.matches(given) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"lab\"")],
            "a bearer token is needed: Authorization: Bearer TOKEN (the token in the server's --token-file)\n",
        )
            .into_response(),
    }
}
