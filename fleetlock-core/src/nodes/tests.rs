use super::*;

#[test]
fn maps_every_kind_of_id_to_its_node() {
    let mut index = NodeIndex::default();
    index.apply(Node::new("n1").machine_id("0123456789abcdef0123456789abcdef"));
    index.apply(Node::new("n2").machine_id("1c09ca98-649c-4c7a-bc77-9cd04c96812e"));
    index.apply(
        Node::new("n3")
            .machine_id("e0f3745b108f471cbd4883c6fbed8cdd")
            .annotation(ID_OVERRIDE, "custom-node-uuid"),
    );
    let name = |id: &str| match index.lookup(id) {
        Lookup::Found(v) => v.name.clone(),
        other => panic!("{id}: {other:?}"),
    };
    // The verified Zincati ids.
    assert_eq!(name("583627a932274834a8ebd99f4ed41c0d"), "n1");
    assert_eq!(name("978a225b3d7b40e9acd7ce9b62f68444"), "n2");
    assert_eq!(name("8f040e49ad9a45a8b0c617313becf153"), "n3");
    // Raw machine ids, as other clients send them, in any case, with dashes or not.
    assert_eq!(name("0123456789ABCDEF0123456789ABCDEF"), "n1");
    assert_eq!(name("1c09ca98649c4c7abc779cd04c96812e"), "n2");
    // The override.
    assert_eq!(name("custom-node-uuid"), "n3");
    // Never a substring match.
    assert_eq!(index.lookup("583627a9"), Lookup::NotFound);
}

#[test]
fn updates_and_removals_keep_the_index_exact() {
    let mut index = NodeIndex::default();
    index.apply(Node::new("n1").annotation(ID_OVERRIDE, "old"));
    index.apply(Node::new("n1").annotation(ID_OVERRIDE, "new"));
    assert_eq!(index.lookup("old"), Lookup::NotFound);
    assert!(matches!(index.lookup("new"), Lookup::Found(v) if v.name == "n1"));
    index.remove("n1");
    assert_eq!(index.lookup("new"), Lookup::NotFound);
    assert!(index.is_empty());
}

#[test]
fn a_list_in_pieces_replaces_the_index_only_when_it_ends() {
    let mut index = NodeIndex::default();
    index.reset(vec![Node::new("a"), Node::new("b"), Node::new("c")]);
    assert_eq!(index.len(), 3);
    // A relist in pieces: `b` was deleted while the watch was down, `d` created.
    index.list(Node::new("a").annotation(ID_OVERRIDE, "id-a"));
    index.list(Node::new("d"));
    assert!(
        index.get("b").is_some(),
        "nothing is removed before the list ends"
    );
    assert!(matches!(index.lookup("id-a"), Lookup::Found(v) if v.name == "a"));
    index.reset(vec![Node::new("c")]);
    let mut names: Vec<&str> = index.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "c", "d"]);
    // An empty list empties the index; a list that broke off deletes nothing.
    index.list(Node::new("a"));
    index.abandon_list();
    index.reset(Vec::new());
    assert!(index.is_empty());
}

#[test]
fn cloned_machine_ids_are_ambiguous_not_guessed() {
    let mut index = NodeIndex::default();
    for n in ["b", "a"] {
        index.apply(Node::new(n).machine_id("0123456789abcdef0123456789abcdef"));
    }
    assert_eq!(
        index.lookup("583627a932274834a8ebd99f4ed41c0d"),
        Lookup::Ambiguous(vec!["a".into(), "b".into()])
    );
    // Once an operator re-creates one of them with a fresh machine id, the other is found.
    index.apply(Node::new("a").machine_id("e0f3745b108f471cbd4883c6fbed8cdd"));
    assert!(matches!(
        index.lookup("583627a932274834a8ebd99f4ed41c0d"),
        Lookup::Found(v) if v.name == "b"
    ));
    index.remove("b");
    assert_eq!(
        index.lookup("0123456789abcdef0123456789abcdef"),
        Lookup::NotFound
    );
    assert!(matches!(
        index.lookup("8f040e49ad9a45a8b0c617313becf153"),
        Lookup::Found(v) if v.name == "a"
    ));
    assert_eq!(index.len(), 1);
}

#[test]
fn an_override_in_machine_id_form_is_found_in_any_case_and_with_dashes() {
    let mut index = NodeIndex::default();
    index.apply(Node::new("n1").annotation(ID_OVERRIDE, "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"));
    assert!(matches!(
        index.lookup("aaaaaaaabbbbccccddddeeeeeeeeeeee"),
        Lookup::Found(v) if v.name == "n1"
    ));
    // A malformed machine id is still an id, compared as text.
    index.apply(Node::new("n2").machine_id("not-a-machine-id"));
    assert!(matches!(index.lookup("NOTAMACHINEID"), Lookup::Found(v) if v.name == "n2"));
}
