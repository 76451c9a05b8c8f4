#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;

const M: &str = MASKED_SECRET;

/// An external connector's SPEC: secrets under names no guess would catch, beside names that
/// look secret and are not, in a `oneOf`, an array and a `$ref`.
fn spec() -> Value {
    json!({
        "type": "object",
        "definitions": {"vault": {"type": "object", "properties": {"unlock": {"type": "string", "airbyte_secret": true}}}},
        "properties": {
            "host": {"type": "string"},
            "api-key": {"type": "string", "airbyte_secret": true},
            "favourite_colour": {"type": "string", "airbyte_secret": true},
            "password_hint": {"type": "string"},
            "auth": {"type": "object", "oneOf": [
                {"properties": {"kind": {"const": "basic"}, "pwd": {"type": "string", "airbyte_secret": true}}},
                {"properties": {"kind": {"const": "header"}, "auth_header": {"type": "string", "airbyte_secret": true}}}
            ]},
            "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                "url": {"type": "string"}, "sesame": {"type": "string", "airbyte_secret": true}}}},
            "vault": {"$ref": "#/definitions/vault"},
            "keys": {"type": "array", "items": {"type": "string", "airbyte_secret": true}}
        }
    })
}

#[test]
fn the_spec_says_which_fields_are_secret_at_any_depth() {
    let configuration = json!({
        "host": "h", "api-key": "k", "favourite_colour": "teal", "password_hint": "pets",
        "auth": {"kind": "basic", "pwd": "p"},
        "endpoints": [{"url": "a", "sesame": "s1"}, {"url": "b", "sesame": "s2"}],
        "vault": {"unlock": "u"}, "keys": ["k1", "k2"],
        // Not in the SPEC: its name decides.
        "extra_token": "t", "note": "n",
    });
    let masked = mask(&configuration, Some(&spec()));
    assert_eq!(
        masked,
        json!({
            "host": "h", "api-key": M, "favourite_colour": M, "password_hint": "pets",
            "auth": {"kind": "basic", "pwd": M},
            "endpoints": [{"url": "a", "sesame": M}, {"url": "b", "sesame": M}],
            "vault": {"unlock": M}, "keys": [M, M],
            "extra_token": M, "note": "n",
        })
    );
}

#[test]
fn without_a_spec_names_decide_conservatively() {
    let configuration = json!({
        "host": "db", "password": "hunter2", "api-key": "k", "apiKey": "k", "passphrase": "p",
        "pwd": "p", "auth_header": "Bearer x", "client_key": "-----BEGIN", "jdbc_url_params": "password=x",
        "tunnel_method": {"tunnel_method": "SSH_KEY_AUTH", "ssh_key": "-----BEGIN"},
        "credentials": {"auth_type": "Client", "client_secret": "s", "refresh_token": "r"},
        "secrets": {"a": "nested", "b": [1, 2]},
        "primary_key": "id", "count": 5, "use_ssl": true,
    });
    let masked = mask(&configuration, None);
    for secret in [
        "/password",
        "/api-key",
        "/apiKey",
        "/passphrase",
        "/pwd",
        "/auth_header",
        "/client_key",
        "/jdbc_url_params",
        "/tunnel_method/ssh_key",
        "/credentials/client_secret",
        "/credentials/refresh_token",
        "/secrets/a",
        "/secrets/b/1",
    ] {
        assert_eq!(masked.pointer(secret).unwrap(), M, "{secret}");
    }
    for shown in [
        "/host",
        "/tunnel_method/tunnel_method",
        "/credentials/auth_type",
        "/primary_key",
        "/count",
        "/use_ssl",
    ] {
        assert_eq!(
            masked.pointer(shown),
            configuration.pointer(shown),
            "{shown}"
        );
    }
}

#[test]
fn a_mask_keeps_the_stored_secret_only_for_the_same_destination() {
    let stored = json!({"host": "db", "port": 5432, "username": "u", "password": "old",
                        "tunnel_method": {"tunnel_host": "bastion", "tunnel_user_password": "tp"}});
    // The same destination (a port as text is the same port): kept.
    let mut sent = json!({"host": "db", "port": "5432", "username": "u", "password": M,
                          "tunnel_method": {"tunnel_host": "bastion", "tunnel_user_password": M}});
    keep_masked_secrets(&mut sent, &stored, None).unwrap();
    assert_eq!(sent["password"], "old");
    assert_eq!(sent["tunnel_method"]["tunnel_user_password"], "tp");
    // A new secret is taken as given, whatever changed.
    let mut given = json!({"host": "elsewhere", "password": "new"});
    keep_masked_secrets(&mut given, &stored, None).unwrap();
    assert_eq!(given["password"], "new");
    for (sent, secret, changed) in [
        (
            json!({"host": "evil.example", "port": 5432, "username": "u", "password": M}),
            "configuration.password",
            "configuration.host",
        ),
        (
            json!({"host": "db", "port": 5432, "username": "other", "password": M}),
            "configuration.password",
            "configuration.username",
        ),
        (
            json!({"host": "db", "port": 5432, "username": "u", "password": "x",
                   "tunnel_method": {"tunnel_host": "evil", "tunnel_user_password": M}}),
            "configuration.tunnel_method.tunnel_user_password",
            "configuration.tunnel_method.tunnel_host",
        ),
        // An enclosing level's destination counts too.
        (
            json!({"host": "evil", "port": 5432, "username": "u", "password": "x",
                   "tunnel_method": {"tunnel_host": "bastion", "tunnel_user_password": M}}),
            "configuration.tunnel_method.tunnel_user_password",
            "configuration.host",
        ),
    ] {
        let mut sent = sent;
        let error = keep_masked_secrets(&mut sent, &stored, None).unwrap_err();
        let ApiError::BadRequest { errors, detail } = error else {
            panic!("not a 400: {error:?}");
        };
        assert_eq!(errors[0].field, secret, "{detail}");
        assert!(detail.contains(changed), "{detail}");
    }
}

#[test]
fn a_mask_is_never_stored() {
    let stored = json!({"host": "db", "note": "n"});
    for sent in [
        json!({"host": "db", "password": M}),
        json!({"host": "db", "note": M}),
    ] {
        let mut sent = sent;
        assert!(matches!(
            keep_masked_secrets(&mut sent, &stored, None),
            Err(ApiError::BadRequest { .. })
        ));
    }
}

#[test]
fn masks_in_arrays_are_resolved_by_identity_then_position() {
    let spec = spec();
    let stored = json!({"host": "h", "endpoints": [{"url": "a", "sesame": "s1"}, {"url": "b", "sesame": "s2"}],
                        "keys": ["k1", "k2"]});
    // Reordered, the first one new: each mask finds the element it stood for.
    let mut sent = json!({"host": "h", "endpoints": [{"url": "b", "sesame": M}, {"url": "c", "sesame": "s3"}, {"url": "a", "sesame": M}],
                          "keys": [M, "k9"]});
    keep_masked_secrets(&mut sent, &stored, Some(&spec)).unwrap();
    assert_eq!(
        sent["endpoints"],
        json!([{"url": "b", "sesame": "s2"}, {"url": "c", "sesame": "s3"}, {"url": "a", "sesame": "s1"}])
    );
    assert_eq!(sent["keys"], json!(["k1", "k9"]));
    // What names masked before the SPEC was known comes back as it was stored.
    let stored_hint = json!({"host": "h", "password_hint": "pets"});
    let mut echoed = json!({"host": "h", "password_hint": M});
    keep_masked_secrets(&mut echoed, &stored_hint, Some(&spec)).unwrap();
    assert_eq!(echoed["password_hint"], "pets");
    // An element pointed elsewhere keeps no secret.
    let mut moved = json!({"host": "h", "endpoints": [{"url": "evil", "sesame": M}]});
    let error = keep_masked_secrets(&mut moved, &stored, Some(&spec)).unwrap_err();
    assert!(
        error.to_string().contains("configuration.endpoints[0].url"),
        "{error}"
    );
    // Past the stored elements there is nothing to keep.
    let mut longer = json!({"host": "h", "keys": ["k1", "k2", M]});
    let error = keep_masked_secrets(&mut longer, &stored, Some(&spec)).unwrap_err();
    assert!(
        error.to_string().contains("configuration.keys[2]"),
        "{error}"
    );
}

#[test]
fn names_are_judged_in_any_spelling() {
    for secret in [
        "api-key",
        "API_KEY",
        "apiKey",
        "X-Api-Key",
        "passphrase",
        "pwd",
        "auth_header",
        "client_key",
        "jdbc_url_params",
        "encryption_key",
        "key",
    ] {
        assert!(looks_secret(secret), "{secret}");
    }
    for plain in ["host", "primary_key", "username", "keyspace", "count"] {
        assert!(!looks_secret(plain), "{plain}");
    }
    for destination in [
        "host",
        "tunnel_host",
        "baseUrl",
        "s3_bucket_name",
        "region",
        "account_id",
        "user",
    ] {
        assert!(is_destination_field(destination), "{destination}");
    }
    assert!(!is_destination_field("schema") && !is_destination_field("password"));
}
