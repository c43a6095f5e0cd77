//! HTTP client of a running node's API.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Nothing listens at the API address: no node runs there.
#[derive(Debug)]
pub struct NoNode(SocketAddr);

impl std::fmt::Display for NoNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no kolokol node answers at {} (start one with `kolokol up`)",
            self.0
        )
    }
}

impl std::error::Error for NoNode {}

/// `Ok(None)` for "no node answers", the value otherwise (for commands that work with the node stopped too).
pub fn if_running<T>(result: anyhow::Result<T>) -> anyhow::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.downcast_ref::<NoNode>().is_some() => Ok(None),
        Err(error) => Err(error),
    }
}

/// A client of one node's API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    api: SocketAddr,
    token: Option<String>,
    token_error: Option<String>,
}

impl Client {
    /// `data_dir` is where the token is read from (the node's data directory).
    pub fn new(api: SocketAddr, data_dir: &Path) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        let token_path = kolokol_node::token_path(data_dir);
        let (token, token_error) = match std::fs::read_to_string(&token_path) {
            Ok(token) => (Some(token.trim().to_owned()), None),
            Err(error) => (
                None,
                Some(format!(
                    "cannot read the API token {}: {error}",
                    token_path.display()
                )),
            ),
        };
        Ok(Client {
            http,
            base: format!("http://{api}/api/v1"),
            api,
            token,
            token_error,
        })
    }

    /// Reads need the token as writes do: the API's answers are private to whoever can read the data directory.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(self.with_token(request)).await
    }

    /// The request with the token, when there is one. Without it the request still goes out: if no node answers,
    /// that is the clearer error; if one does, its refusal is explained by the missing token (see `send`).
    fn with_token(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.header(kolokol_http::TOKEN_HEADER, token),
            None => request,
        }
    }

    /// `GET` of a route that answers raw bytes (a .torrent file).
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send_raw(self.with_token(request)).await
    }

    /// `POST` of raw bytes with a content type, answered with JSON. `path` may carry a query string (encoded).
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(kolokol_http::TOKEN_HEADER, self.token()?)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let bytes = self.send_raw(request).await?;
        serde_json::from_slice(&bytes).context("the node's answer is not what this CLI expects")
    }

    fn token(&self) -> anyhow::Result<String> {
        match (&self.token, &self.token_error) {
            (Some(token), _) => Ok(token.clone()),
            (None, Some(error)) => {
                bail!("{error}; is --data-dir the running node's data directory?")
            }
            (None, None) => bail!("no API token"),
        }
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(self.with_token(request)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let bytes = self.send_raw(request).await?;
        serde_json::from_slice(&bytes).context("the node's answer is not what this CLI expects")
    }

    /// Sends a request; the body of a successful answer, or the node's error message.
    async fn send_raw(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Vec<u8>> {
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                anyhow::Error::new(NoNode(self.api))
            } else {
                anyhow!("request to the node at {} failed: {error}", self.api)
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .context("reading the node's answer")?;
        if status == reqwest::StatusCode::FORBIDDEN
            && let (None, Some(error)) = (&self.token, &self.token_error)
        {
            bail!("{error}; is --data-dir the running node's data directory?");
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_owned());
            bail!("{message}");
        }
        Ok(bytes.to_vec())
    }
}
