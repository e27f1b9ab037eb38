//! The parsers of what a user or a guest writes: address rules and
//! endpoints (with the policy deciding on them), mount specs and sizes.

use std::str::FromStr;

use wasabi_net::{AddressRule, Endpoint, NetPolicy};

/// The target.
pub const TARGET: crate::Target = crate::Target {
    name: "parsers",
    about: "address rules, endpoints and the policy's decisions, mount specs, sizes",
    dictionary: &[
        b":",
        b"/",
        b"[",
        b"]",
        b"::",
        b"::ffff:",
        b"127.0.0.1",
        b"0177.0.0.1",
        b"127.1",
        b"0x7f.1",
        b"localhost",
        b":ro",
        b":rw",
        b"..",
        b"MiB",
        b"GiB",
        b"99999",
        b"65535",
        b"%",
        b"\n",
        b"\0",
        b"*",
    ],
    run,
};

fn run(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    // A rule and an endpoint from the two halves of the input: whatever
    // they are, parsing and deciding must not panic, and a denial of an
    // endpoint the only rule grants would be a bug.
    let (a, b) = text.split_once('\n').unwrap_or((&text, &text));
    let rule = AddressRule::from_str(a);
    if let Ok(endpoint) = Endpoint::from_str(b) {
        let _ = endpoint.host_name();
        let mut policy = NetPolicy::deny_all();
        let _ = policy.check_connect(&endpoint);
        let _ = policy.check_listen(&endpoint);
        let _ = policy.listen_target(&endpoint);
        if let Ok(rule) = rule {
            let grants = rule.matches(&endpoint);
            policy.allow_connect(rule);
            assert_eq!(
                policy.check_connect(&endpoint).is_ok(),
                grants,
                "the policy disagrees with its only rule: {a:?} {b:?}"
            );
        }
    }
    let _ = wasabi_fs::MountSpec::from_str(&text);
    let _ = wasabi_core::parse_size(&text);
}
