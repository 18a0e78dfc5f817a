//! The management API over a real socket, with real plugins: every endpoint, every refusal
//! with its exact body, and an upgrade through the API under request load.
//!
//! This file holds what the tests share: a running plane (plugin server and admin API over
//! one manager), raw requests to it, and packages to upload.

mod access;
mod consistency;
mod install;
mod plugins;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use gp_host::http::{Admin, AdminToken, PluginServer};
use gp_host::Manager;

use crate::harness::{base_dir, example};
use crate::http::{Reply, Running};
use crate::web_fixture::web;

/// A base dir with `web` 1.0.0 (a folder) and `sample`, a manager, its plugin server (on a
/// port of its own) and its admin API (on another), both running.
pub struct Plane {
    pub base: tempfile::TempDir,
    pub manager: Manager,
    pub server: PluginServer,
    pub token: AdminToken,
    pub read_only: AdminToken,
    pub plugins: Running,
    pub admin: Running,
}

fn plane() -> Plane {
    plane_with(|_| {}, 0)
}

/// A [`Plane`] whose base dir `prepare` adds to before the load, which `failures` folders of
/// fail.
pub fn plane_with(prepare: impl FnOnce(&Path), failures: usize) -> Plane {
    let base = base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    prepare(base.path());
    let manager = Manager::new(base.path());
    let server = PluginServer::new(manager.clone());
    let token = AdminToken::generate();
    let read_only = AdminToken::generate();
    let admin = Admin::builder(manager.clone(), token.clone())
        .server(server.clone())
        .read_only_token(read_only.clone())
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), failures, "{report}");
    admin.mark_ready();
    Plane {
        plugins: Running::start(&server),
        admin: Running::serve(admin.router()),
        base,
        manager,
        server,
        token,
        read_only,
    }
}

/// One request, with exactly the headers given (and `Connection: close`).
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    crate::http::parse_reply(&bytes)
}

/// One request to the management API at `addr`, as `token`.
fn api(
    addr: SocketAddr,
    token: &AdminToken,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Reply {
    raw(
        addr,
        &format!(
            "{method} /api/v1{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}",
            token.secret()
        ),
        body,
    )
}

impl Plane {
    fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        self.call_as(
            &self.token,
            method,
            path,
            "application/json",
            body.as_bytes(),
        )
    }

    /// `POST /plugins/{plugin}/upgrade` with `package` (a `.plg`) as the body.
    fn upload(&self, plugin: &str, package: &[u8]) -> Reply {
        self.call_as(
            &self.token,
            "POST",
            &format!("/plugins/{plugin}/upgrade"),
            "application/octet-stream",
            package,
        )
    }

    pub fn call_as(
        &self,
        token: &AdminToken,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        api(self.admin.addr, token, method, path, content_type, body)
    }

    fn plugin(&self, name: &str) -> serde_json::Value {
        let reply = self.call("GET", &format!("/plugins/{name}"), "");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }
}

/// `GET /api/v1/events` sent on a new connection whose reads time out after `timeout`.
pub(crate) fn open_events(addr: SocketAddr, token: &AdminToken, timeout: Duration) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        token.secret()
    )
    .unwrap();
    stream
}

/// A `.plg` of the library `library`, in `dir`.
pub(crate) fn package_of(library: &Path, dir: &Path) -> Vec<u8> {
    let folder = dir.join("folder");
    let info = gp_host::build::install_library(library, &folder).unwrap();
    let plugin = folder.join(&info.manifest.name);
    let output = dir.join("out.plg");
    gp_host::package::pack(&plugin, &output, None).unwrap();
    std::fs::read(output).unwrap()
}
