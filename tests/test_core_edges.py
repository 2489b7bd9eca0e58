"""Edge cases where a careless tool would lose a user's data."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import run_devcert


def test_an_orphan_ca_key_is_never_overwritten(cli_env, caroot, tmp_path):
    caroot.mkdir(parents=True)
    key = caroot / "rootCA-key.pem"
    key.write_bytes(b"someone's key\n")
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.startswith("devcert: error: ") and "rootCA-key.pem exists" in res.stderr
    assert key.read_bytes() == b"someone's key\n"
    assert not (caroot / "rootCA.pem").exists()


def test_a_folder_as_output_file_is_refused(cli_env, tmp_path):
    res = run_devcert("create", "localhost", "--cert-file", "sub/", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "not a folder" in res.stderr
    (tmp_path / "out").mkdir()
    res = run_devcert("create", "localhost", "--key-file", "out", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "not a folder" in res.stderr
    assert not list((tmp_path / "out").iterdir())


def test_p256_keys_are_written_exactly_as_cryptography_writes_them():
    # devcert writes P-256 PKCS#8 itself (to skip importing cryptography's serialization
    # package at start-up); it must be byte-identical to the library's own encoding.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from devcert import keys

    for _ in range(300):
        key = ec.generate_private_key(ec.SECP256R1())
        reference = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        assert keys.private_pem(key) == reference
    rsa_key = keys.generate("rsa")
    assert serialization.load_pem_private_key(keys.private_pem(rsa_key), None).key_size == 2048


def test_no_arguments_prints_the_help_and_succeeds(cli_env, tmp_path):
    for args in ((), ("ca",)):
        res = run_devcert(*args, env=cli_env, cwd=tmp_path)
        assert res.returncode == 0
        assert res.stdout.startswith("Usage: devcert") and "error" not in res.stdout + res.stderr


def test_help_names_values_and_bad_numbers_are_plain(cli_env, tmp_path):
    res = run_devcert("create", "--help", env=cli_env, cwd=tmp_path)
    assert "--days DAYS" in res.stdout and "<int>" not in res.stdout
    res = run_devcert("list", "--expiring", "soon", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "not a whole number" in res.stderr and "Input should" not in res.stderr


def test_a_p12_without_password_creates_nothing(cli_env, caroot, tmp_path):
    res = run_devcert("create", "app.test", "--p12-file", "a.p12", env=cli_env, cwd=tmp_path, input="")
    assert res.returncode == 2 and "--p12-password" in res.stderr
    assert not caroot.exists() and not (tmp_path / "a.p12").exists()


def test_a_caroot_that_is_a_file_is_named(cli_env, caroot, tmp_path):
    caroot.parent.mkdir(parents=True, exist_ok=True)
    caroot.write_text("not a folder")
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1 and "is a file, not a folder" in res.stderr


def _pair_matches(cert_path, key_path) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    return cert.public_key() == key.public_key()


def test_a_failed_create_leaves_the_old_pair_as_it_was(cli_env, tmp_path):
    """Re-creating into a certificate path that cannot be written (its folder is gone) must not
    replace the key: the old certificate and key still match afterwards."""
    (tmp_path / "certs").mkdir()
    (tmp_path / "keys").mkdir()
    res = run_devcert("create", "app.test", "--cert-file", "certs/c.pem", "--key-file", "keys/k.pem",
                      env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    old_key = (tmp_path / "keys/k.pem").read_bytes()
    (tmp_path / "certs/c.pem").rename(tmp_path / "c.pem")
    (tmp_path / "certs").rmdir()
    res = run_devcert("create", "app.test", "--cert-file", "certs/c.pem", "--key-file", "keys/k.pem",
                      env=cli_env, cwd=tmp_path)
    assert res.returncode == 1 and "the folder does not exist" in res.stderr, res.stderr
    assert (tmp_path / "keys/k.pem").read_bytes() == old_key
    assert _pair_matches(tmp_path / "c.pem", tmp_path / "keys/k.pem")
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["k.pem"]  # no temporary files left


def test_a_failed_rename_puts_the_first_file_back(tmp_path, monkeypatch):
    """If the second rename fails after the first succeeded, the first file gets its old
    content and mode back (and a file that was new is removed)."""
    import os

    from devcert import files
    from devcert.errors import FileWriteError

    key, cert, new = tmp_path / "k.pem", tmp_path / "c.pem", tmp_path / "new.pem"
    key.write_bytes(b"old key")
    key.chmod(0o600)
    cert.write_bytes(b"old cert")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(cert):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", failing_replace)
    for first in (key, new):
        try:
            files.write_together([(first, b"new key", 0o600), (cert, b"new cert", 0o644)])
        except FileWriteError as err:
            assert "no space left" in str(err)
        else:
            raise AssertionError("the write should have failed")
    monkeypatch.undo()
    assert key.read_bytes() == b"old key" and (key.stat().st_mode & 0o777) == 0o600
    assert cert.read_bytes() == b"old cert"
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem"]


def test_a_very_long_name_gets_a_short_file_name(cli_env, tmp_path):
    name = ".".join(["a" * 60] * 4) + ".test"  # 248 characters: a valid DNS name
    res = run_devcert("create", name, "--json", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    import json

    out = json.loads(res.stdout)
    assert len(os.path.basename(out["key"]).encode()) <= 255
    assert _pair_matches(Path(out["cert"]), Path(out["key"]))
    again = json.loads(run_devcert("create", name, "--json", env=cli_env, cwd=tmp_path).stdout)
    assert again["cert"] == out["cert"]  # the same names give the same file name
    res = run_devcert("create", "x.test", "--cert-file", "b" * 260 + ".pem", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "File name too long" in res.stderr and "unexpected" not in res.stderr


def test_csr_refuses_key_options(cli_env, tmp_path):
    res = run_devcert("create", "--csr", "req.csr", "--key-type", "rsa", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "--key-type" in res.stderr


def test_first_create_says_install_once(cli_env, caroot, tmp_path):
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("devcert install") == 1, res.stderr


def test_renew_keeps_days_given_to_create(cli_env, tmp_path):
    import datetime as dt

    from cryptography import x509

    res = run_devcert("create", "days.test", "--days", "15", "--cert-file", "d.pem", "--key-file", "dk.pem",
                      env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    first = x509.load_pem_x509_certificate((tmp_path / "d.pem").read_bytes())
    res = run_devcert("renew", "d.pem", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    renewed = x509.load_pem_x509_certificate((tmp_path / "d.pem").read_bytes())
    assert renewed.serial_number != first.serial_number
    life = renewed.not_valid_after_utc - renewed.not_valid_before_utc
    assert dt.timedelta(days=14) < life <= dt.timedelta(days=16), life


def test_ca_init_refuses_conflicting_options_before_warning(cli_env, caroot, tmp_path):
    assert run_devcert("ca", "init", env=cli_env, cwd=tmp_path).returncode == 0
    before = (caroot / "rootCA.pem").read_bytes()
    res = run_devcert("ca", "init", "--force", "--permit", "x.test", "--no-constraints", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2
    assert "replacing" not in res.stderr and "cannot be used with --no-constraints" in res.stderr
    assert (caroot / "rootCA.pem").read_bytes() == before


def test_a_damaged_ca_key_is_shown_not_fatal(cli_env, caroot, tmp_path):
    import json

    assert run_devcert("ca", "init", env=cli_env, cwd=tmp_path).returncode == 0
    (caroot / "rootCA-key.pem").write_text("junk\n")
    res = run_devcert("ca", "info", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Private key: unusable" in res.stdout and "not a valid PEM private key" in res.stdout
    info = json.loads(run_devcert("ca", "info", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert "not a valid PEM private key" in info["key_problem"]
    res = run_devcert("doctor", "--json", env=cli_env, cwd=tmp_path)
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"] if c["group"] == "ca"}
    assert checks["CA certificate"]["status"] == "ok"
    assert checks["CA key"]["status"] == "problem" and "not a valid PEM" in checks["CA key"]["detail"]
    res = run_devcert("create", "a.test", env=cli_env, cwd=tmp_path)  # signing still needs the key
    assert res.returncode == 1 and "not a valid PEM private key" in res.stderr


def test_caroot_json(cli_env, caroot, tmp_path):
    import json

    out = json.loads(run_devcert("caroot", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert out == {"caroot": str(caroot), "ca_exists": False, "cert": None}
    run_devcert("ca", "init", env=cli_env, cwd=tmp_path)
    out = json.loads(run_devcert("caroot", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert out["ca_exists"] is True and out["cert"] == str(caroot / "rootCA.pem")


def test_install_dry_run_json(cli_env, caroot, tmp_path):
    import json

    run_devcert("ca", "init", env=cli_env, cwd=tmp_path)
    res = run_devcert("install", "--dry-run", "--json", "--store", "nss", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # stdout is the JSON object alone; progress went to stderr
    assert out["dry_run"] is True and out["ok"] is True
    assert [s["store"] for s in out["stores"]] == ["nss"]
    assert out["ca"]["entry"].startswith("devcert-")


def test_os_names_for_the_system_store_are_explained(cli_env, tmp_path):
    res = run_devcert("install", "--store", "macos", "--dry-run", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "`system` is the macOS System keychain" in res.stderr


def test_import_mkcert_with_damaged_files_blames_them(cli_env, caroot, tmp_path):
    mk = tmp_path / "mk"
    mk.mkdir()
    (mk / "rootCA.pem").write_text("junk\n")
    res = run_devcert("ca", "import-mkcert", "--caroot", str(mk), env=cli_env, cwd=tmp_path)
    assert res.returncode == 1
    assert "mkcert's CA" in res.stderr and "devcert ca init" not in res.stderr and "move it aside" not in res.stderr
    assert not caroot.exists()


def test_pkcs12_certificates_are_listed_and_renew_says_why_it_skips_them(cli_env, tmp_path):
    import json

    for args in (["--cert-file", "p.pem"], []):
        res = run_devcert("create", "p.test", "--p12-file", "p.p12", "--p12-password", "pw", *args,
                          env=cli_env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        listed = json.loads(run_devcert("list", "--json", env=cli_env, cwd=tmp_path).stdout)
        entries = listed["certs"]
        ours = [e for e in entries if e.get("p12") == str(tmp_path / "p.p12")]
        assert len(ours) == 1, listed
        assert not ours[0].get("missing") and not ours[0].get("replaced"), ours
        res = run_devcert("renew", "--all", env=cli_env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "PKCS#12" in res.stdout + res.stderr and "CSR" not in res.stdout + res.stderr
        (tmp_path / "p.pem").unlink(missing_ok=True)
