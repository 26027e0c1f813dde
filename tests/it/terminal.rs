//! Web terminal (issue 3): a real shell on a real agent through the browser WebSocket,
//! reattach after a disconnect, recording and replay, and the session ending with the login.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use crate::util::*;

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn server() -> TestServer {
    TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
        ],
        None,
    )
}

fn enroll(s: &TestServer, admin: &Client, groups: &[&str]) -> (AgentProc, u64) {
    let t = admin
        .post(
            "/api/v1/hosts/enroll-tokens",
            &json!({"ttl_minutes": 5, "groups": groups}),
        )
        .body;
    let agent = AgentProc::start(s, Some(t["token"].as_str().unwrap()), None);
    assert!(agent.wait_for("Enrolled."), "{}", agent.log());
    let list = admin.get("/api/v1/hosts/enroll-tokens").body;
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == t["id"])
        .unwrap()["used_by_host"]
        .as_u64()
        .unwrap();
    (agent, id)
}

fn connect(s: &TestServer, c: &Client, ws_url: &str) -> Result<Ws, String> {
    let url = format!("{}{}", s.base.replace("http://", "ws://"), ws_url);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("omp_session={}", c.cookie.clone().unwrap())
            .parse()
            .unwrap(),
    );
    let (ws, _) = tungstenite::connect(req).map_err(|e| e.to_string())?;
    if let MaybeTlsStream::Plain(t) = ws.get_ref() {
        t.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    Ok(ws)
}

/// Reads events until one satisfies `f` (within 20 s); returns all output seen and the event.
fn read_until(ws: &mut Ws, mut f: impl FnMut(&Value, &str) -> bool) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if let Some(d) = v["data"].as_str() {
                    seen.push_str(d);
                }
                if f(&v, &seen) {
                    return (seen, v);
                }
            }
            Ok(Message::Close(_)) => return (seen, json!({"type": "closed"})),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return (seen, json!({"type": "error", "error": e.to_string()})),
        }
    }
    panic!("nothing matched within 20 s; output so far:\n{seen}");
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

#[test]
fn terminal_session_reattach_recording_and_replay() {
    let s = server();
    let admin = s.admin();
    let (_agent, host) = enroll(&s, &admin, &["t"]);
    let a = admin.post(
        &format!("/api/v1/hosts/{host}/terminal"),
        &json!({"cols": 100, "rows": 30}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_u64().unwrap();
    let ws_url = a.body["ws_url"].as_str().unwrap().to_string();

    let mut ws = connect(&s, &admin, &ws_url).unwrap();
    send(&mut ws, json!({"type": "resize", "cols": 120, "rows": 40}));
    send(
        &mut ws,
        json!({"type": "input", "data": "echo omp-$((40+2)); tput cols\r"}),
    );
    let (out, _) = read_until(&mut ws, |_, seen| {
        seen.contains("omp-42") && seen.contains("120")
    });
    assert!(out.contains("omp-42"));

    // The browser goes away (page reload): the shell lives on and a new socket reattaches,
    // repainting recent output first.
    drop(ws);
    let mut ws = connect(&s, &admin, &ws_url).unwrap();
    let (repaint, _) = read_until(&mut ws, |_, seen| seen.contains("omp-42"));
    assert!(repaint.contains("omp-42"));
    send(&mut ws, json!({"type": "input", "data": "exit 7\r"}));
    let (_, ev) = read_until(&mut ws, |v, _| v["type"] == "exit");
    assert_eq!(ev["code"], 7, "{ev}");

    // Recorded (asciicast v2) and listed for the audit page.
    let list = admin.get("/api/v1/terminals").body;
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["exit_code"], 7);
    let rec = admin.get(&format!("/api/v1/terminals/{id}/recording"));
    assert_eq!(rec.status, 200);
    let mut lines = rec.text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        (header["version"].as_u64(), header["width"].as_u64()),
        (Some(2), Some(100))
    );
    let events: Vec<Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e[1] == "r" && e[2] == "120x40"));
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert!(output.contains("omp-42"), "{output}");
    let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "event times go forward"
    );
    let audit = admin.get("/api/v1/audit?action=terminals.open").body;
    assert_eq!(audit["total"], 1);
    assert!(
        audit["items"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("term-{id}.cast"))
    );
    // Ended sessions cannot be reattached: the socket opens and says why (browsers cannot
    // see the status of a refused upgrade).
    let mut ws = connect(&s, &admin, &ws_url).unwrap();
    let (_, ev) = read_until(&mut ws, |v, _| v["type"] == "exit" || v["type"] == "closed");
    assert!(
        ev["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no such terminal session"),
        "{ev}"
    );
}

#[test]
fn terminal_permissions_and_login_end() {
    let s = server();
    let admin = s.admin();
    let (_a, ha) = enroll(&s, &admin, &["a"]);
    let (_b, hb) = enroll(&s, &admin, &["b"]);
    let viewer = user_with_role(&s, &admin, "vera", "viewer");
    let a = viewer.post(&format!("/api/v1/hosts/{ha}/terminal"), &json!({}));
    assert_eq!(
        (a.status, a.body["error"]["details"]["permission"].as_str()),
        (403, Some("terminal:open"))
    );
    admin.post("/api/v1/roles", &json!({"name": "a-term", "permissions": ["hosts:read", "terminal:open"], "host_groups": ["a"]}));
    let mut scoped = user_with_role(&s, &admin, "tess", "a-term");
    assert_eq!(
        scoped
            .post(&format!("/api/v1/hosts/{hb}/terminal"), &json!({}))
            .status,
        404
    );
    let t = scoped.post(&format!("/api/v1/hosts/{ha}/terminal"), &json!({}));
    assert_eq!(t.status, 201, "{}", t.text);
    let ws_url = t.body["ws_url"].as_str().unwrap().to_string();
    // Someone else's terminal cannot be attached, even by an admin: the socket only says so.
    let mut other = connect(&s, &admin, &ws_url).unwrap();
    let (seen, ev) = read_until(&mut other, |v, _| {
        v["type"] == "exit" || v["type"] == "closed"
    });
    assert!(
        ev["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no such terminal session"),
        "{ev}"
    );
    assert!(seen.is_empty(), "no output leaks: {seen}");
    // A cross-site page cannot open it either.
    let url = format!("{}{}", s.base.replace("http://", "ws://"), ws_url);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("omp_session={}", scoped.cookie.clone().unwrap())
            .parse()
            .unwrap(),
    );
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert!(tungstenite::connect(req).is_err());

    let mut ws = connect(&s, &scoped, &ws_url).unwrap();
    send(&mut ws, json!({"type": "input", "data": "echo ready\r"}));
    read_until(&mut ws, |_, seen| seen.contains("ready"));
    // Logging out ends the terminal.
    assert_eq!(scoped.post("/api/v1/auth/logout", &json!({})).status, 204);
    let (_, ev) = read_until(&mut ws, |v, _| v["type"] == "exit" || v["type"] == "closed");
    assert_eq!(ev["reason"], "the login session ended", "{ev}");
    scoped.cookie = None;
    let list = admin.get("/api/v1/terminals").body;
    assert_eq!(list["items"][0]["end_reason"], "the login session ended");
}

#[test]
fn terminal_close_takeover_and_crash() {
    let s = server();
    let admin = s.admin();
    let (_agent, host) = enroll(&s, &admin, &[]);
    let open = |c: &Client| {
        let a = c.post(&format!("/api/v1/hosts/{host}/terminal"), &json!({}));
        assert_eq!(a.status, 201, "{}", a.text);
        a.body["ws_url"].as_str().unwrap().to_string()
    };
    // Closing from the browser ends it with an exit event.
    let url = open(&admin);
    let mut ws = connect(&s, &admin, &url).unwrap();
    send(&mut ws, json!({"type": "close"}));
    let (_, ev) = read_until(&mut ws, |v, _| v["type"] == "exit");
    assert_eq!(ev["reason"], "closed");

    // A second window takes the terminal over; the first learns why (close code 4000).
    let url = open(&admin);
    let mut first = connect(&s, &admin, &url).unwrap();
    let mut second = connect(&s, &admin, &url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        match first.read() {
            Ok(Message::Close(Some(f))) => break u16::from(f.code),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                assert!(Instant::now() < deadline, "no close frame");
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code, 4000);
    send(
        &mut second,
        json!({"type": "input", "data": "echo still-here\r"}),
    );
    read_until(&mut second, |_, seen| seen.contains("still-here"));
    // DELETE from another request ends it for the attached window with an exit event.
    let id: u64 = url.split('/').nth(4).unwrap().parse().unwrap();
    assert_eq!(admin.delete(&format!("/api/v1/terminals/{id}")).status, 204);
    let (_, ev) = read_until(&mut second, |v, _| v["type"] == "exit");
    assert_eq!(ev["reason"], "closed");

    // A crash leaves no session marked as running forever.
    let url = open(&admin);
    let id: u64 = url.split('/').nth(4).unwrap().parse().unwrap();
    let dir = s.crash();
    let s = TestServer::start_with(&[("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)], Some(dir));
    let admin = s.admin();
    let list = admin.get("/api/v1/terminals").body;
    let rec = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(rec["end_reason"], "the server restarted", "{rec}");
    assert!(!rec["ended_at"].is_null());
}
