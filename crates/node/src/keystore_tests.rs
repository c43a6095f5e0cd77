#![allow(clippy::unwrap_used)]

use super::*;

fn pass(text: &str) -> Passphrase {
    Passphrase::new(text.into()).unwrap()
}

fn name(text: &str) -> IdentityName {
    IdentityName::parse(text).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, with its bytes (what a seized device holds).
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn names_are_checked() {
    for good in ["default", "a", "work-2", "x_y", "0day", &"a".repeat(32)] {
        IdentityName::parse(good).unwrap();
    }
    for bad in [
        "",
        "-x",
        "_x",
        "Work",
        "a.b",
        "../x",
        "a/b",
        "a b",
        "ж",
        &"a".repeat(33),
    ] {
        let err = IdentityName::parse(bad).unwrap_err();
        assert!(err.to_string().contains("not an identity name"), "{err}");
    }
}

#[test]
fn an_earlier_author_key_is_the_default_identity_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let secret = [3u8; 32];
    fs::write(dir.path().join("author.key"), hex::encode(secret)).unwrap();
    let store = Keystore::new(dir.path());
    let key = store.open_or_create_default(&[]).unwrap();
    assert_eq!(key.secret_bytes(), secret);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "default");
    assert!(list[0].default);
    assert_eq!(list[0].author_id, Some(key.public().to_string()));
    assert_eq!(mode(&dir.path().join("author.key")), 0o600);
}

#[test]
fn new_identities_are_listed_refused_twice_and_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store = Keystore::new(dir.path());
    let default = store.open_or_create_default(&[]).unwrap();
    let work = store.create(&name("work"), None).unwrap();
    let secret = store.create(&name("sealed"), Some(&pass("pw"))).unwrap();
    assert_ne!(default.public(), work.public());

    let before = files(dir.path());
    let err = store.create(&name("work"), None).unwrap_err();
    assert!(matches!(err, KeystoreError::Exists(_)), "{err}");
    let err = store.create(&name("default"), None).unwrap_err();
    assert!(matches!(err, KeystoreError::Exists(_)), "{err}");
    assert_eq!(files(dir.path()), before, "a refused create changed files");

    let list = store.list().unwrap();
    let names: Vec<&str> = list.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["default", "sealed", "work"]);
    assert_eq!(list[2].author_id, Some(work.public().to_string()));
    assert_eq!(list[1].author_id, None, "a sealed identity names no author");
    assert!(list[1].passphrase && !list[2].passphrase);
    for (path, _) in &before {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&dir.path().join("identities")), 0o700);

    // The sealed file holds neither the secret nor the author id.
    let bytes = fs::read(store.path(&name("sealed"))).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains(&hex::encode(secret.secret_bytes())));
    assert!(!text.contains(&secret.public().to_string()));
    let opened = store
        .open(&name("sealed"), &[pass("no"), pass("pw")])
        .unwrap();
    assert_eq!(opened.public(), secret.public());
    let err = store.open(&name("sealed"), &[pass("no")]).unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{err}");
    let err = store.open(&name("sealed"), &[]).unwrap_err();
    assert!(matches!(err, KeystoreError::NeedsPassphrase(_)), "{err}");
}

#[test]
fn export_and_import_round_trip_and_bad_files_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let (from, to) = (Keystore::new(&a), Keystore::new(&b));
    let plain = from.create(&name("plain"), None).unwrap();
    let sealed = from.create(&name("sealed"), Some(&pass("pw"))).unwrap();
    let (plain_file, sealed_file) = (tmp.path().join("plain.bak"), tmp.path().join("sealed.bak"));
    from.export(&name("plain"), &plain_file).unwrap();
    from.export(&name("sealed"), &sealed_file).unwrap();
    assert_eq!(mode(&sealed_file), 0o600);
    let err = from.export(&name("plain"), &sealed_file).unwrap_err();
    assert!(matches!(err, KeystoreError::FileExists(_)), "{err}");
    assert_eq!(
        fs::read(&sealed_file).unwrap(),
        fs::read(from.path(&name("sealed"))).unwrap()
    );

    let imported = to.import(&name("p"), &plain_file, None).unwrap();
    assert_eq!(imported.public(), plain.public());
    let err = to.import(&name("s"), &sealed_file, None).unwrap_err();
    assert!(matches!(err, KeystoreError::NeedsPassphrase(_)), "{err}");
    let err = to
        .import(&name("s"), &sealed_file, Some(&pass("nope")))
        .unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{err}");
    assert!(!to.path(&name("s")).exists());
    let imported = to
        .import(&name("s"), &sealed_file, Some(&pass("pw")))
        .unwrap();
    assert_eq!(imported.public(), sealed.public());
    assert!(
        to.read(&name("s")).unwrap().is_sealed(),
        "import keeps the seal"
    );

    let before = files(&b);
    let err = to
        .import(&name("p"), &sealed_file, Some(&pass("pw")))
        .unwrap_err();
    assert!(matches!(err, KeystoreError::Exists(_)), "{err}");
    let junk = tmp.path().join("junk");
    for bytes in [&b"not a key"[..], &[0xff; 10][..], &[b'a'; 5000][..], b""] {
        fs::write(&junk, bytes).unwrap();
        let err = to
            .import(&name("junk"), &junk, Some(&pass("pw")))
            .unwrap_err();
        assert!(matches!(err, KeystoreError::File { .. }), "{err}");
    }
    let err = to
        .import(&name("junk"), &tmp.path().join("missing"), None)
        .unwrap_err();
    assert!(matches!(err, KeystoreError::Io { .. }), "{err}");
    assert_eq!(files(&b), before, "a refused import changed files");
}

#[test]
fn lock_seals_an_existing_key_and_keeps_its_author() {
    let dir = tempfile::tempdir().unwrap();
    let store = Keystore::new(dir.path());
    let key = store.open_or_create_default(&[]).unwrap();
    let default = IdentityName::default_name();
    store.lock(&default, &[], &pass("first")).unwrap();
    assert!(store.read(&default).unwrap().is_sealed());
    let err = store
        .lock(&default, &[pass("wrong")], &pass("second"))
        .unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{err}");
    store
        .lock(&default, &[pass("first")], &pass("second"))
        .unwrap();
    let opened = store.open_or_create_default(&[pass("second")]).unwrap();
    assert_eq!(opened.public(), key.public());
    assert_eq!(mode(&store.path(&default)), 0o600);
    // No temporary file left behind.
    assert_eq!(files(dir.path()).len(), 1);
}
