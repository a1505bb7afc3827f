//! The command line: defaults, the development-credentials guard, `config check`.

use std::process::Command;

fn lifeboat() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    c.env_clear();
    c
}

#[test]
fn dev_credentials_refuse_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = lifeboat()
        .args(["serve"])
        .env("LIFEBOAT_ADDRESS", "0.0.0.0:0")
        .env("LIFEBOAT_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on non-loopback"), "{err}");
}

#[test]
fn config_check_prints_resolved_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[server]\naddress = \"127.0.0.1:9100\"\n[[users]]\naccess_key = \"app\"\nsecret_key = \"s3cr3t-value\"\n",
    )
    .unwrap();
    let out = lifeboat()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("127.0.0.1:9100"));
    assert!(text.contains("REDACTED"));
    assert!(!text.contains("s3cr3t-value"));

    std::fs::write(&path, "[server]\nadress = \"typo\"\n").unwrap();
    let out = lifeboat()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("adress"));
}

#[test]
fn example_configs_pass_config_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let out = lifeboat()
            .args(["config", "check"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
