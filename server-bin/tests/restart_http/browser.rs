//! What a browser brings: pages of other sites that try to act, and the page's sign-in with
//! a server-set cookie.

use super::*;

#[tokio::test(start_paused = true)]
async fn pages_from_other_sites_cannot_act() {
    let s = serve(&cluster(), settings(Auth::none())).await;
    let (status, _, body) = s
        .send(&request(
            "POST",
            "/api/v1/service/Deployment/shop/web/restart",
            &["origin: https://evil.example"],
            "",
        ))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(json(&body)["kind"], "foreign_origin");
    // Our own page (the requests' Host is localhost) may, with a JSON body.
    let restart = |headers: &[&str], body: &str| {
        request(
            "POST",
            "/api/v1/service/Deployment/shop/web/restart",
            headers,
            body,
        )
    };
    let (status, _, body) = s
        .send(&restart(
            &["origin: http://localhost", "content-type: application/json"],
            "{}",
        ))
        .await;
    assert_eq!(status, 200, "our own page may: {body}");

    // An HTML form can post, but not JSON: a browser's POST without it is refused.
    let (status, _, body) = s
        .send(&restart(
            &["origin: http://localhost", "content-type: text/plain"],
            "{}",
        ))
        .await;
    assert_eq!(status, 415, "{body}");

    // DNS rebinding: a page at evil.example whose name now points here is same-origin with
    // itself, but this server is not evil.example.
    let (status, _, body) = s
        .send(&request(
            "POST",
            "/api/v1/service/Deployment/shop/db/restart",
            &[
                "host: evil.example",
                "origin: http://evil.example",
                "content-type: application/json",
            ],
            "{}",
        ))
        .await;
    assert_eq!(
        (status, json(&body)["kind"].as_str()),
        (403, Some("foreign_origin")),
        "{body}"
    );
    let (status, _, _) = s
        .send(&request(
            "GET",
            "/api/v1/service",
            &["host: evil.example"],
            "",
        ))
        .await;
    assert_eq!(status, 403, "nor may it read, without authentication");

    // A name the server is told it has is fine.
    let mut named = Auth::none();
    named
        .allowed_origins
        .push("https://restart.example.com".into());
    let s = serve(&cluster(), settings(named)).await;
    let (status, _, body) = s
        .send(&request(
            "GET",
            "/api/v1/service",
            &[
                "host: restart.example.com",
                "origin: https://restart.example.com",
            ],
            "",
        ))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The page signs in by handing its token to the server, which checks it and keeps it in an
/// HttpOnly, SameSite=Strict cookie (`__Host-` and `Secure` behind HTTPS).
#[tokio::test(start_paused = true)]
async fn the_page_signs_in_with_a_server_set_cookie() {
    let s = serve(&cluster(), settings(tokens())).await;
    let body = format!(r#"{{"token":"{ALICE}"}}"#);
    let (status, head, answer) = s
        .send(&request(
            "POST",
            "/api/v1/session",
            &["content-type: application/json"],
            &body,
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie.starts_with(&format!("restart_manager_token={ALICE};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // The cookie identifies the caller.
    let pair = cookie.split(';').next().unwrap();
    let (status, _, me) = s
        .send(&request(
            "GET",
            "/api/v1/whoami",
            &[&format!("cookie: {pair}")],
            "",
        ))
        .await;
    assert_eq!(status, 200);
    assert!(me.contains(r#""user":"alice""#), "{me}");

    // Behind a TLS-terminating proxy the cookie is bound to the host and never sent in clear.
    let (_, head, _) = s
        .send(&request(
            "POST",
            "/api/v1/session",
            &["content-type: application/json", "x-forwarded-proto: https"],
            &body,
        ))
        .await;
    assert!(
        head.contains(&format!("set-cookie: __Host-restart_manager_token={ALICE}; Path=/; HttpOnly; SameSite=Strict; Secure")),
        "{head}"
    );

    // A wrong token sets nothing; another site cannot sign a browser in.
    let (status, head, _) = s
        .send(&request(
            "POST",
            "/api/v1/session",
            &[],
            r#"{"token":"wrong-token-0123456789"}"#,
        ))
        .await;
    assert_eq!(status, 401);
    assert!(!head.contains("set-cookie"), "{head}");
    let (status, _, _) = s
        .send(&request(
            "POST",
            "/api/v1/session",
            &["origin: https://evil.example"],
            &body,
        ))
        .await;
    assert_eq!(status, 403);

    // Signing out forgets both cookies.
    let (status, head, _) = s.send(&request("DELETE", "/api/v1/session", &[], "")).await;
    assert_eq!(status, 204);
    assert_eq!(head.matches("Max-Age=0").count(), 2, "{head}");

    // Without authentication there is nothing to sign in to.
    let open = serve(&cluster(), settings(Auth::none())).await;
    let (status, _, answer) = open
        .send(&request("POST", "/api/v1/session", &[], &body))
        .await;
    assert_eq!(status, 400, "{answer}");
}
