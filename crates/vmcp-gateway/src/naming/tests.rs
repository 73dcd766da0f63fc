use super::*;

fn prefixed(p: &str) -> Naming {
    Naming::Prefixed(p.to_owned())
}

fn exposed(a: &Assignment) -> Vec<Vec<Option<&str>>> {
    a.exposed.iter().map(|v| v.iter().map(|n| n.as_deref()).collect()).collect()
}

#[test]
fn prefixed_names_never_collide_and_stay_stable() {
    let (pa, pb, pc) = (prefixed("a"), prefixed("b"), prefixed("c"));
    let two = [
        Claim { id: "a", naming: &pa, names: vec!["echo", "add"] },
        Claim { id: "b", naming: &pb, names: vec!["echo"] },
    ];
    let three = [
        Claim { id: "c", naming: &pc, names: vec!["echo"] },
        Claim { id: "a", naming: &pa, names: vec!["echo", "add"] },
        Claim { id: "b", naming: &pb, names: vec!["echo"] },
    ];
    let before = assign(&two);
    let after = assign(&three);
    assert_eq!(exposed(&before), [vec![Some("a__echo"), Some("a__add")], vec![Some("b__echo")]]);
    assert_eq!(exposed(&after)[1..], exposed(&before)[..], "adding a server renamed others");
    assert!(before.conflicts.is_empty());
    // `echo` is ambiguous, so it is no alias; `add` is unique, so it is.
    assert_eq!(before.lookup.get("echo"), None);
    assert_eq!(before.lookup.get("add"), Some(&(0, 1)));
    assert_eq!(before.lookup.get("b__echo"), Some(&(1, 0)));
}

#[test]
fn bare_collisions_are_settled_by_file_order() {
    let bare = Naming::Bare;
    let claims = [
        Claim { id: "first", naming: &bare, names: vec!["search"] },
        Claim { id: "second", naming: &bare, names: vec!["search", "other"] },
    ];
    let a = assign(&claims);
    assert_eq!(exposed(&a), [vec![Some("search")], vec![Some("second__search"), Some("other")]]);
    assert_eq!(a.lookup["search"], (0, 0));
    assert_eq!(a.lookup["second__search"], (1, 0));
    assert_eq!(a.lookup["first__search"], (0, 0));
    assert_eq!(a.conflicts.len(), 1);
    assert_eq!(candidates(&claims, &a, "search"), ["search", "second__search"]);
}

#[test]
fn same_prefix_twice_falls_back_to_the_id() {
    let p = prefixed("x");
    let claims = [
        Claim { id: "one", naming: &p, names: vec!["t"] },
        Claim { id: "two", naming: &p, names: vec!["t"] },
    ];
    let a = assign(&claims);
    assert_eq!(exposed(&a), [vec![Some("x__t")], vec![Some("two__t")]]);
}

#[test]
fn long_names_are_shortened_stably_within_the_spec() {
    let long = "t".repeat(200);
    let q = qualify("server", &long);
    assert_eq!(q.len(), 128);
    assert_eq!(q, qualify("server", &long));
    assert!(q.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
    assert_ne!(qualify("server", &format!("{long}x")), q);
}
