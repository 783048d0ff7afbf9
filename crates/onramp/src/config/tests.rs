use super::*;

#[test]
fn an_empty_file_gives_the_defaults() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.database_url(), "sqlite://./onramp-data/onramp.sqlite3");
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let err = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err().to_string();
    assert!(err.contains("listne"), "{err}");
    let err = Config::from_toml("[mail]\ntransprt = \"file\"").unwrap_err().to_string();
    assert!(err.contains("transprt"), "{err}");
}

#[test]
fn secrets_do_not_show_in_debug() {
    let c = Config::from_toml("database_url = \"sqlite://x?password=hunter2\"").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn the_architecture_example_parses_whole() {
    // ARCHITECTURE.md §5, verbatim apart from the environment reference's value.
    let doc = r#"
        listen        = "127.0.0.1:8080"
        data_dir      = "./onramp-data"
        database_url  = "sqlite://./onramp-data/onramp.sqlite3"
        base_domain   = "localhost"
        public_url    = "http://localhost:8080"
        [mail]
        transport = "file"
        from      = "onramp <no-reply@localhost>"
        [sms]
        transport = "file"
        [fast_track]
        enabled = true
        [[instances]]
        name = "default"
        open_registration = true
        open_reg_role = "member"
        open_reg_email_service = "default"
        [[instances.apps]]
        id          = "app_demo"
        name        = "Demo"
        signup_url  = "http://localhost:3000/activate"
        api_keys    = ["${ONRAMP_ARCHITECTURE_TEST_KEY}"]
        default_contract = "basic"
        ext_key_type = 12
        [[instances.apps.domains]]
        id = "dom_1234567890"
        title = "Acme"
        description = "Acme customers"
        help = "Pick the domain of your company"
        allow_signup = true
        [[instances.apps.contracts]]
        id = "basic"
        fields = [
          { name = "name",     type = "string",   required = true },
          { name = "email",    type = "email",    required = true, unique = true },
          { name = "password", type = "password", required = true },
          { name = "mobile",   type = "phone",    required = false, unique = true, verify = "sms" },
        ]
    "#;
    let env =
        |name: &str| (name == "ONRAMP_ARCHITECTURE_TEST_KEY").then(|| "an-architecture-test-key".to_owned());
    let c = Config::from_toml_with_env(doc, &env).unwrap();
    let app = &c.instances[0].apps[0];
    assert_eq!(app.domains[0].id, "dom_1234567890");
    assert!(app.activation_token_in_response);
    assert_eq!(app.api_keys[0].0, "an-architecture-test-key");
    assert_eq!((app.default_contract.as_deref(), app.ext_key_type), (Some("basic"), Some(12)));
    assert_eq!(app.contracts[0].fields[3].verify.as_deref(), Some("sms"));
    assert!(c.fast_track.enabled && c.instances[0].open_registration == Some(true));
}

#[test]
fn the_example_file_parses() {
    let c = Config::from_toml(include_str!("../../../../onramp.example.toml")).unwrap();
    assert!(c.fast_track.enabled);
}

#[test]
fn fast_track_claim_settings_are_checked() {
    let c = Config::from_toml("[fast_track]\nreserved_names = [\"acme\", \"payroll\"]").unwrap();
    assert_eq!((c.fast_track.confirm_within_hours, c.fast_track.reserved_names.len()), (72, 2));
    let err = Config::from_toml("[fast_track]\nconfirm_within_hours = 0\nreserved_names = [\"Acme Inc\"]")
        .unwrap_err()
        .to_string();
    assert!(err.contains("confirm_within_hours") && err.contains("\"Acme Inc\""), "{err}");
}

#[test]
fn bad_values_are_explained() {
    let err =
        Config::from_toml("listen = \"nowhere\"\n[mail]\ntransport = \"smtp\"").unwrap_err().to_string();
    assert!(err.contains("listen") && err.contains("smtp_url"), "{err}");
}
