//! Eight threads sharing one session, doing mixed calls whose results are
//! checked: key/value round trips, lock-protected increments (mutual
//! exclusion), and watches of each thread's own writes.

mod common;

use std::sync::Arc;

use common::*;

#[test]
fn eight_threads_one_session_mixed_calls() {
    let c = Arc::new(client());
    let base = unique("mt");
    let counter = format!("{base}/counter");
    c.set(&counter, "0").unwrap();
    let mut handles = Vec::new();
    for t in 0..8 {
        let (c, base, counter) = (c.clone(), base.clone(), counter.clone());
        handles.push(std::thread::spawn(move || match t {
            0..=3 => {
                for i in 0..100 {
                    let k = format!("{base}/kv{t}/{i}");
                    let v = format!("{t}-{i}");
                    c.set(&k, &v).unwrap();
                    assert_eq!(c.get(&k).unwrap().unwrap(), v.as_bytes());
                    c.delete(&k).unwrap();
                    assert_eq!(c.get(&k).unwrap(), None);
                }
            }
            4 | 5 => {
                // Read-modify-write under the lock: only mutual exclusion
                // makes the final count exact.
                for _ in 0..15 {
                    let idx = c.lock(format!("{base}/lock"), 10).unwrap();
                    let n: u32 = String::from_utf8(c.get(&counter).unwrap().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    c.set(&counter, (n + 1).to_string()).unwrap();
                    c.unlock(format!("{base}/lock"), &idx).unwrap();
                }
            }
            _ => {
                let p = format!("{base}/w{t}");
                let mut next = current_revision() + 1;
                for i in 0..50 {
                    c.set(format!("{p}/x"), i.to_string()).unwrap();
                }
                for i in 0..50 {
                    let e = c.watch(&p, Some(next)).unwrap();
                    assert_eq!(
                        e.value.unwrap(),
                        i.to_string().as_bytes(),
                        "thread {t} event {i}"
                    );
                    next = e.revision + 1;
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(c.get(&counter).unwrap().unwrap(), b"30");
}
