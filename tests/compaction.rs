//! A compacted revision cannot be watched. In a test binary of its own:
//! compacting the shared test etcd would break other tests' history replays.

mod common;

use common::*;

#[test]
fn compacted_revision_is_refused() {
    let c = client();
    let p = unique("compact");
    let rev = current_revision();
    c.set(&p, "a").unwrap();
    let e = c.watch(&p, Some(rev + 1)).unwrap();
    c.set(&p, "b").unwrap();
    let rev = c.watch(&p, Some(e.revision + 1)).unwrap().revision;
    compact(rev);
    let err = c.watch(&p, Some(e.revision)).unwrap_err();
    assert!(err.is_refusal(), "{err:?}");
    assert!(err.message().contains("compacted"), "{err}");
}

fn compact(revision: i64) {
    let url = format!("http://{}/v3/kv/compaction", endpoint());
    let body = format!("{{\"revision\":\"{revision}\"}}");
    let status = ureq::post(&url).send(body.as_bytes()).unwrap().status();
    assert_eq!(status, 200);
}
