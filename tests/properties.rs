//! Property tests: arbitrary input never panics the parsers, canonical
//! keys are idempotent, what we encode we decode.

use etcdapi::keys::{canonical, immediate_children, lock_name, watch_matches};
use etcdapi::parse_server_list;
use proptest::prelude::*;

proptest! {
    #[test]
    fn server_lists_never_panic(s in ".{0,64}") {
        let _ = parse_server_list(&s);
    }

    #[test]
    fn parsed_servers_print_back_and_reparse(host in "[a-z][a-z0-9.-]{0,20}", port in 1u16..) {
        let item = format!("{host}:{port}");
        let list = parse_server_list(&format!(" {item},;\t{item}\n")).unwrap();
        prop_assert_eq!(list.len(), 2);
        prop_assert_eq!(list[0].port, port);
        let again = parse_server_list(&list[0].base_url()).unwrap();
        prop_assert_eq!(&again[0], &list[0]);
    }

    #[test]
    fn bad_ports_are_rejected(host in "[a-z]{1,10}", port in 65536u32..10_000_000) {
        let item = format!("{host}:{port}");
        prop_assert!(parse_server_list(&item).is_err());
    }

    /// The port is its leading digits, whatever follows them (as the
    /// original's strtoul read it), when they form a port.
    #[test]
    fn port_is_its_leading_digits(host in "[a-z][a-z0-9.-]{0,20}", port in 1u16.., tail in "[^0-9\n\r\t ,;:/\\[\\]]{0,8}") {
        let list = parse_server_list(&format!("{host}:{port}{tail}")).unwrap();
        prop_assert_eq!(list.len(), 1);
        prop_assert_eq!(list[0].port, port);
        prop_assert_eq!(&list[0].host, &host);
    }

    #[test]
    fn no_leading_digits_no_port(host in "[a-z]{1,10}", tail in "[^0-9\n\r\t ,;:/]{0,8}") {
        let item = format!("{host}:{tail}");
        prop_assert!(parse_server_list(&item).is_err());
    }

    #[test]
    fn canonical_is_idempotent_and_well_formed(key in proptest::collection::vec(any::<u8>(), 0..40)) {
        let c = canonical(&key);
        prop_assert_eq!(canonical(&c), c.clone());
        prop_assert_eq!(c[0], b'/');
        prop_assert!(c.len() == 1 || !c.ends_with(b"/"));
        prop_assert!(!c.windows(2).any(|w| w == b"//"));
        prop_assert!(watch_matches(&c, &c));
    }

    #[test]
    fn lock_names_are_one_level_and_distinct(a in "[a-z/%]{1,12}", b in "[a-z/%]{1,12}") {
        let (ca, cb) = (canonical(a.as_bytes()), canonical(b.as_bytes()));
        let (na, nb) = (lock_name(&ca), lock_name(&cb));
        // The escaped name never has a '/' after the /_locks/ root...
        prop_assert!(!na["/_locks/".len()..].contains(&b'/'));
        // ...and distinct keys get distinct names.
        prop_assert_eq!(ca == cb, na == nb);
    }

    #[test]
    fn listings_are_sorted_unique_children(names in proptest::collection::vec("[a-c_]{1,3}(/[a-c]{1,2})?", 0..20)) {
        let keys: Vec<Vec<u8>> = names.iter().map(|n| format!("/d/{n}").into_bytes()).collect();
        let kids = immediate_children(b"/d", keys.iter().map(|k| k.as_slice()));
        let mut sorted = kids.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&sorted, &kids);
        for k in &kids {
            prop_assert!(k.starts_with(b"/d/") && k[3] != b'_' && !k[3..].contains(&b'/'));
        }
    }
}
