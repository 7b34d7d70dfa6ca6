//! A small HTTP client for the in-process simulator.

#![allow(dead_code)]

use confluence_sim::{Credentials, SimConfig, SimHandle};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The service account (site admin).
    Admin,
    /// A licensed non-admin.
    NonAdmin,
    /// No credentials.
    Anonymous,
    /// The admin's email with a wrong token.
    BadToken,
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`Null` when empty).
    pub body: Value,
    /// Headers.
    pub headers: HeaderMap,
}

/// A running simulator and a client for it.
pub struct Site {
    /// The simulator.
    pub sim: SimHandle,
    http: reqwest::Client,
    admin: Credentials,
    user: Credentials,
}

impl Site {
    /// Starts a simulator with `cfg` on a free port.
    pub async fn start(cfg: SimConfig) -> Site {
        let sim = confluence_sim::spawn(cfg).await.expect("simulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let admin = sim.service_account();
        let user = sim.non_admin_account();
        Site {
            sim,
            http,
            admin,
            user,
        }
    }

    /// Starts the default (small) site.
    pub async fn default_site() -> Site {
        Site::start(SimConfig::default()).await
    }

    /// Makes a call; `path` includes the query string.
    pub async fn call(&self, who: Who, method: &str, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{}", self.sim.base_url(), path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, &url);
        req = match who {
            Who::Admin => req.basic_auth(&self.admin.email, Some(&self.admin.api_token)),
            Who::NonAdmin => req.basic_auth(&self.user.email, Some(&self.user.api_token)),
            Who::BadToken => req.basic_auth(&self.admin.email, Some("not-the-token")),
            Who::Anonymous => req,
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(format!("<non-JSON body of {} bytes>", bytes.len()))
            })
        };
        Answer {
            status,
            body,
            headers,
        }
    }

    /// Shortcut for an admin call.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(Who::Admin, method, path, body).await
    }
}
