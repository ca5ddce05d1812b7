//! Just enough of the API server's protobuf encoding to read the access reviews kubectl
//! sends that way (`kubectl auth can-i` posts a SelfSubjectAccessReview as protobuf). The
//! answer goes back as JSON, which every client accepts.

use serde_json::{Map, Value, json};

/// The envelope's magic: `k8s` and a zero byte.
const MAGIC: &[u8] = b"k8s\0";

/// One field of a message.
enum Field<'a> {
    Varint,
    Bytes(&'a [u8]),
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a message, in order.
fn fields(mut b: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let field = match key & 7 {
            0 => {
                varint(&mut b)?;
                Field::Varint
            }
            1 => {
                b = b.get(8..)?;
                Field::Varint
            }
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                let (payload, rest) = (b.get(..len)?, b.get(len..)?);
                b = rest;
                Field::Bytes(payload)
            }
            5 => {
                b = b.get(4..)?;
                Field::Varint
            }
            _ => return None,
        };
        out.push((key >> 3, field));
    }
    Some(out)
}

fn bytes_of<'a>(fields: &[(u64, Field<'a>)], number: u64) -> Option<&'a [u8]> {
    fields.iter().find_map(|(n, f)| match f {
        Field::Bytes(b) if *n == number => Some(*b),
        _ => None,
    })
}

fn strings(message: &[u8], names: &[(u64, &str)]) -> Option<Map<String, Value>> {
    let fields = fields(message)?;
    let mut out = Map::new();
    for (number, name) in names {
        if let Some(b) = bytes_of(&fields, *number) {
            out.insert((*name).to_string(), json!(String::from_utf8_lossy(b)));
        }
    }
    Some(out)
}

/// A protobuf-encoded SelfSubjectAccessReview or SubjectAccessReview, as the JSON the
/// endpoint's handlers read; `None` if it is not one.
pub(crate) fn access_review(body: &[u8]) -> Option<Value> {
    let envelope = fields(body.strip_prefix(MAGIC)?)?;
    let type_meta = strings(bytes_of(&envelope, 1)?, &[(1, "apiVersion"), (2, "kind")])?;
    let raw = fields(bytes_of(&envelope, 2)?)?;
    let spec = fields(bytes_of(&raw, 2).unwrap_or_default())?;
    let mut out_spec = Map::new();
    if let Some(attrs) = bytes_of(&spec, 1) {
        let names = [
            (1, "namespace"),
            (2, "verb"),
            (3, "group"),
            (4, "version"),
            (5, "resource"),
            (6, "subresource"),
            (7, "name"),
        ];
        out_spec.insert(
            "resourceAttributes".into(),
            Value::Object(strings(attrs, &names)?),
        );
    }
    if let Some(attrs) = bytes_of(&spec, 2) {
        out_spec.insert(
            "nonResourceAttributes".into(),
            Value::Object(strings(attrs, &[(1, "path"), (2, "verb")])?),
        );
    }
    let kind = type_meta.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind == "SubjectAccessReview" {
        // SubjectAccessReviewSpec: 3 user, 4 groups (repeated), 6 uid.
        let user = bytes_of(&spec, 3).map(|b| String::from_utf8_lossy(b).into_owned());
        let groups: Vec<String> = spec
            .iter()
            .filter_map(|(n, f)| match f {
                Field::Bytes(b) if *n == 4 => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect();
        out_spec.insert("user".into(), json!(user));
        out_spec.insert("groups".into(), json!(groups));
    }
    Some(json!({
        "kind": kind,
        "apiVersion": type_meta.get("apiVersion").cloned().unwrap_or(json!("authorization.k8s.io/v1")),
        "metadata": {},
        "spec": out_spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(number: u64, s: &str) -> Vec<u8> {
        message(number, s.as_bytes())
    }

    fn message(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from((number << 3) | 2).unwrap()];
        out.push(u8::try_from(payload.len()).unwrap());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_the_review_kubectl_auth_can_i_sends() {
        let attrs = [
            string(2, "create"),
            string(5, "pods"),
            string(6, "eviction"),
        ]
        .concat();
        let spec = message(1, &attrs);
        let raw = [message(1, &[]), message(2, &spec)].concat();
        let type_meta = [
            string(1, "authorization.k8s.io/v1"),
            string(2, "SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [
            MAGIC.to_vec(),
            message(1, &type_meta),
            message(2, &raw),
            string(4, ""),
        ]
        .concat();
        let review = access_review(&body).unwrap();
        assert_eq!(review["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            review["spec"]["resourceAttributes"],
            json!({"verb": "create", "resource": "pods", "subresource": "eviction"})
        );
        assert!(access_review(b"{\"kind\":\"x\"}").is_none());
    }
}
