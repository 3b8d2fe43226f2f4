//! `wifi-isolate network add|list|show|remove`: the saved networks ([`crate::networks`]).
//!
//! The secret (passphrase, SAE or EAP password, private key password) is read from a no-echo
//! prompt on the terminal, or from stdin with `--secret-stdin` — never from the command line,
//! where `ps` and the shell's history would show it. Nothing is written unless the whole
//! profile is valid. `list` and `show` print no secret, only which ones are set.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent::tools::{EapKind, MacMode};
use crate::networks::{self, EapProfile, Name, Profile, Security, Store};

/// Arguments of `network`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER)]
pub struct NetworkArgs {
    /// The profiles' directory (root 0700, files root 0600).
    #[arg(long, global = true, env = networks::DIR_ENV, default_value = networks::DEFAULT_DIR, value_name = "DIR")]
    pub dir: PathBuf,
    /// Running boxes to refresh after add/remove (their box dirs' parent).
    #[arg(
        long,
        global = true,
        default_value = "/run/wifi-isolate/box",
        value_name = "DIR",
        hide = true
    )]
    pub box_root: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: NetworkCommand,
}

const AFTER: &str = "\
Examples:
  wifi-isolate network add office --ssid 'Office WiFi' --security wpa2-psk
  printf '%s' \"$PSK\" | wifi-isolate network add lab --ssid Lab --security wpa3-sae --secret-stdin
  wifi-isolate network add corp --ssid Corp --security eap --eap-method peap \\
      --identity alice --ca-cert /etc/wifi-isolate/networks/corp-ca.pem
  wifi-isolate network add guest --ssid Guest --security open --interface wlp6s0
  wifi-isolate network list
  wifi-isolate network show office
  wifi-isolate network remove office

Then an MCP client connects with wifi_connect {\"network\": \"office\"}: the passphrase stays on
the host and in the box, never in the conversation. wifi_saved_networks lists the names.

Files:
  /etc/wifi-isolate/networks/NAME.toml      one profile (root 0600; the directory root 0700).
                                            Hand-written ones are checked the same way; a
                                            profile readable by group or others is refused.
  /run/wifi-isolate/box/IFACE/networks/     the box's copy, for the box's root alone: made at
                                            each box start, rewritten by add and remove.

Security modes: open, wpa2-psk, wpa3-sae, wpa2-psk/wpa3-sae (transition: one passphrase, WPA2
or WPA3, whichever the access point offers), eap (PEAP/TTLS with a password, or TLS with a
client certificate and key). Certificates and keys are root-owned files (keys 0600) or PEM
text written into the profile by hand; the daemon puts their PEM text in the box's copy.

Environment:
  WIFI_ISOLATE_NETWORKS_DIR   the profiles' directory (as --dir), for the daemon too";

/// The `network` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// Save a network. The secret comes from a no-echo prompt (twice), or from stdin with
    /// --secret-stdin (one trailing newline is dropped); never from the command line.
    Add(Box<AddArgs>),
    /// List the saved networks: name, SSID, security (no secret).
    List,
    /// Show one saved network; secrets only as "set".
    Show {
        /// The profile's name.
        name: String,
    },
    /// Remove a saved network (running boxes lose it at once).
    Remove {
        /// The profile's name.
        name: String,
    },
}

/// Arguments of `network add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The profile's name: 1-32 of a-z, 0-9, '_' and '-' (what clients pass as network).
    pub name: String,
    /// The SSID, 1-32 bytes.
    #[arg(long)]
    pub ssid: String,
    /// open, wpa2-psk, wpa3-sae, wpa2-psk/wpa3-sae or eap.
    #[arg(long)]
    pub security: Security,
    /// Read the secret from stdin instead of prompting.
    #[arg(long)]
    pub secret_stdin: bool,
    /// The network does not broadcast its SSID.
    #[arg(long)]
    pub hidden: bool,
    /// Connect only to this access point (aa:bb:cc:dd:ee:ff).
    #[arg(long)]
    pub bssid: Option<String>,
    /// The MAC to present: permanent (default), random or per-network.
    #[arg(long, value_parser = parse_mac, default_value = "permanent")]
    pub mac_address: MacMode,
    /// Only this adapter's box gets the profile (repeat for more; default: every adapter).
    #[arg(long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// eap: peap, ttls or tls.
    #[arg(long, value_parser = parse_eap)]
    pub eap_method: Option<EapKind>,
    /// eap: the user identity.
    #[arg(long)]
    pub identity: Option<String>,
    /// eap (PEAP/TTLS): the outer identity sent in the clear, e.g. anonymous.
    #[arg(long)]
    pub anonymous_identity: Option<String>,
    /// eap: the CA certificate, a root-owned PEM file.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<String>,
    /// eap (TLS): the client certificate, a root-owned PEM file.
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<String>,
    /// eap (TLS): the private key, a root-owned 0600 PEM file. Its password, if it has one,
    /// is the secret asked for (an empty answer: none).
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<String>,
    /// eap: accept only a server certificate for this domain (or a subdomain).
    #[arg(long)]
    pub domain_suffix_match: Option<String>,
    /// Overwrite an existing profile of this name.
    #[arg(long)]
    pub replace: bool,
}

fn parse_mac(s: &str) -> Result<MacMode, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("unknown MAC policy {s:?}: use permanent, random or per-network"))
}

fn parse_eap(s: &str) -> Result<EapKind, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("unknown EAP method {s:?}: use peap, ttls or tls"))
}

/// Run `network …`. Errors go to stderr; nothing is written on one.
pub fn exec(a: NetworkArgs) -> ExitCode {
    let store = Store::new(&a.dir);
    let stdin = std::io::stdin();
    let r = match a.command {
        NetworkCommand::Add(add) => add_cmd(&store, &a.box_root, *add, &mut stdin.lock()),
        NetworkCommand::List => list(&store),
        NetworkCommand::Show { name } => show(&store, &name),
        NetworkCommand::Remove { name } => remove(&store, &a.box_root, &name),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifi-isolate network: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Which secret a profile of this kind takes, and whether it may be empty.
fn secret_of(security: Security, method: Option<EapKind>) -> Option<(&'static str, bool)> {
    match (security, method) {
        (Security::Open, _) => None,
        (Security::Wpa2Psk | Security::Transition, _) => Some(("passphrase", false)),
        (Security::Wpa3Sae, _) => Some(("SAE password", false)),
        (Security::Eap, Some(EapKind::Tls)) => Some((
            "private key password (empty: the key is not encrypted)",
            true,
        )),
        (Security::Eap, _) => Some(("EAP password", false)),
    }
}

/// Build the profile from the arguments and `secret`.
fn profile(a: &AddArgs, secret: Option<String>) -> Result<Profile, String> {
    let mut p = Profile {
        ssid: a.ssid.clone(),
        security: a.security,
        psk: None,
        sae_password: None,
        hidden: a.hidden,
        bssid: a.bssid.clone(),
        mac_address: a.mac_address,
        interfaces: a.interfaces.clone(),
        eap: None,
    };
    let eap_flags = [
        ("--eap-method", a.eap_method.is_some()),
        ("--identity", a.identity.is_some()),
        ("--anonymous-identity", a.anonymous_identity.is_some()),
        ("--ca-cert", a.ca_cert.is_some()),
        ("--client-cert", a.client_cert.is_some()),
        ("--private-key", a.private_key.is_some()),
        ("--domain-suffix-match", a.domain_suffix_match.is_some()),
    ];
    match a.security {
        Security::Eap => {
            let method = a
                .eap_method
                .ok_or("security eap needs --eap-method peap|ttls|tls")?;
            let identity = a.identity.clone().ok_or("security eap needs --identity")?;
            let (password, key_password) = match method {
                EapKind::Tls => (None, secret.filter(|s| !s.is_empty())),
                _ => (secret, None),
            };
            p.eap = Some(EapProfile {
                method,
                identity,
                anonymous_identity: a.anonymous_identity.clone(),
                password,
                ca_cert: a.ca_cert.clone(),
                client_cert: a.client_cert.clone(),
                private_key: a.private_key.clone(),
                private_key_password: key_password,
                domain_suffix_match: a.domain_suffix_match.clone(),
            });
        }
        s => {
            if let Some((flag, _)) = eap_flags.iter().find(|(_, set)| *set) {
                return Err(format!("{flag} is only for --security eap"));
            }
            match s {
                Security::Wpa3Sae => p.sae_password = secret,
                Security::Wpa2Psk | Security::Transition => p.psk = secret,
                _ => {}
            }
        }
    }
    Ok(p)
}

/// Read the secret: `--secret-stdin`, else a no-echo prompt on the terminal (asked twice).
fn read_secret(
    what: &str,
    may_be_empty: bool,
    from_stdin: bool,
    stdin: &mut dyn BufRead,
) -> Result<String, String> {
    let s = if from_stdin {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| format!("reading the {what} from stdin: {e}"))?;
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        s
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "the {what} is read from a terminal prompt or, with --secret-stdin, from stdin \
                 (never from the command line); stdin is not a terminal: pass --secret-stdin"
            ));
        }
        let first = prompt(&format!("{what}: "))?;
        let again = prompt(&format!("{what} (again): "))?;
        if first != again {
            return Err(format!("the two {what}s differ; nothing written"));
        }
        first
    };
    if s.is_empty() && !may_be_empty {
        return Err(format!("the {what} is empty; nothing written"));
    }
    Ok(s)
}

/// One line from the terminal with echo off (restored even on error).
fn prompt(text: &str) -> Result<String, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| format!("/dev/tty: {e}; pass --secret-stdin"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tty);
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the lifetime of `tty`; `old` is a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return Err(format!(
            "cannot turn off echo: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) };
    let mut w = &tty;
    let _ = w.write_all(text.as_bytes());
    let _ = w.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    // SAFETY: as above; restores the terminal as it was.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &old) };
    read.map_err(|e| format!("reading the terminal: {e}"))?;
    if line.ends_with('\n') {
        line.pop();
    }
    Ok(line)
}

fn add_cmd(
    store: &Store,
    box_root: &std::path::Path,
    a: AddArgs,
    stdin: &mut dyn BufRead,
) -> Result<(), String> {
    let name = Name::parse(&a.name).map_err(|e| e.to_string())?;
    // Everything that can be checked before the secret is, so no one types it for nothing.
    profile(&a, None)?;
    if !a.replace && store.path(&name).exists() {
        return Err(networks::ProfileError::Exists(name.to_string()).to_string());
    }
    let secret = match secret_of(a.security, a.eap_method) {
        Some((what, may_be_empty)) => Some(read_secret(what, may_be_empty, a.secret_stdin, stdin)?),
        None if a.secret_stdin => {
            return Err(format!(
                "security {} takes no secret: drop --secret-stdin",
                a.security
            ));
        }
        None => None,
    };
    let p = profile(&a, secret)?;
    let path = store
        .save(&name, &p, a.replace)
        .map_err(|e| e.to_string())?;
    println!(
        "saved network {name} ({}, {}) in {}",
        p.ssid,
        p.security,
        path.display()
    );
    refresh(store, box_root);
    Ok(())
}

fn refresh(store: &Store, box_root: &std::path::Path) {
    let (done, errors) = networks::refresh_boxes(store, box_root);
    if !done.is_empty() {
        println!("running boxes updated: {}", done.join(", "));
    }
    for e in errors {
        eprintln!("wifi-isolate network: warning: box not updated: {e}");
    }
}

fn list(store: &Store) -> Result<(), String> {
    let all = store.list().map_err(|e| e.to_string())?;
    if all.is_empty() {
        println!(
            "no saved networks in {} (add one: wifi-isolate network add NAME --ssid SSID --security MODE)",
            store.dir().display()
        );
        return Ok(());
    }
    println!(
        "{:<20} {:<32} {:<18} INTERFACES",
        "NAME", "SSID", "SECURITY"
    );
    let mut failed = false;
    for (name, p) in all {
        match p {
            Ok(p) => println!(
                "{:<20} {:<32} {:<18} {}",
                name,
                p.ssid,
                match &p.eap {
                    Some(e) => format!("eap ({})", method_name(e.method)),
                    None => p.security.to_string(),
                },
                if p.interfaces.is_empty() {
                    "all".to_string()
                } else {
                    p.interfaces.join(",")
                }
            ),
            Err(e) => {
                failed = true;
                println!("{name:<20} (unusable: {e})");
            }
        }
    }
    if failed {
        return Err("some saved networks are unusable (see above); no box gets them".into());
    }
    Ok(())
}

fn method_name(m: EapKind) -> &'static str {
    match m {
        EapKind::Peap => "peap",
        EapKind::Ttls => "ttls",
        EapKind::Tls => "tls",
    }
}

fn show(store: &Store, name: &str) -> Result<(), String> {
    let name = Name::parse(name).map_err(|e| e.to_string())?;
    let p = store.load(&name).map_err(|e| e.to_string())?;
    println!("name: {name}");
    println!("file: {}", store.path(&name).display());
    println!("ssid: {}", p.ssid);
    println!("security: {}", p.security);
    println!("hidden: {}", p.hidden);
    if let Some(b) = &p.bssid {
        println!("bssid: {b}");
    }
    println!(
        "mac_address: {}",
        match p.mac_address {
            MacMode::Permanent => "permanent",
            MacMode::Random => "random",
            MacMode::PerNetwork => "per-network",
        }
    );
    println!(
        "interfaces: {}",
        if p.interfaces.is_empty() {
            "all".to_string()
        } else {
            p.interfaces.join(", ")
        }
    );
    if let Some(e) = &p.eap {
        println!("eap.method: {}", method_name(e.method));
        println!("eap.identity: {}", e.identity);
        if let Some(a) = &e.anonymous_identity {
            println!("eap.anonymous_identity: {a}");
        }
        for (k, v) in [
            ("eap.ca_cert", &e.ca_cert),
            ("eap.client_cert", &e.client_cert),
            ("eap.private_key", &e.private_key),
        ] {
            if let Some(v) = v {
                if v.trim_start().starts_with("-----BEGIN") {
                    println!("{k}: PEM text in the profile");
                } else {
                    println!("{k}: {v}");
                }
            }
        }
        if let Some(d) = &e.domain_suffix_match {
            println!("eap.domain_suffix_match: {d}");
        }
    }
    for s in p.secrets_set() {
        if s != "eap.private_key" {
            println!("{s}: set");
        }
    }
    Ok(())
}

fn remove(store: &Store, box_root: &std::path::Path, name: &str) -> Result<(), String> {
    let name = Name::parse(name).map_err(|e| e.to_string())?;
    let path = store.remove(&name).map_err(|e| e.to_string())?;
    println!("removed saved network {name} ({})", path.display());
    refresh(store, box_root);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        n: NetworkArgs,
    }

    fn add_args(argv: &[&str]) -> (NetworkArgs, Box<AddArgs>) {
        let mut full = vec!["t", "add"];
        full.extend_from_slice(argv);
        let mut t = T::try_parse_from(full).expect("arguments parse").n;
        let NetworkCommand::Add(a) = std::mem::replace(&mut t.command, NetworkCommand::List) else {
            unreachable!()
        };
        (t, a)
    }

    fn run_add(dir: &std::path::Path, argv: &[&str], stdin: &str) -> Result<(), String> {
        let (_, a) = add_args(argv);
        let boxes = dir.join("no-boxes");
        add_cmd(
            &Store::new(dir.join("networks")),
            &boxes,
            *a,
            &mut stdin.as_bytes(),
        )
    }

    #[test]
    fn add_reads_the_secret_from_stdin_and_writes_root_0600() {
        let d = tempfile::tempdir().unwrap();
        let argv = [
            "office",
            "--ssid",
            "Office",
            "--security",
            "wpa2-psk",
            "--secret-stdin",
        ];
        run_add(d.path(), &argv, "correct horse\n").unwrap();
        let f = d.path().join("networks/office.toml");
        let md = std::fs::metadata(&f).unwrap();
        assert_eq!((md.uid(), md.permissions().mode() & 0o777), (0, 0o600));
        let dm = std::fs::metadata(d.path().join("networks")).unwrap();
        assert_eq!(dm.permissions().mode() & 0o777, 0o700);
        let p = Store::new(d.path().join("networks"))
            .load(&Name::parse("office").unwrap())
            .unwrap();
        assert_eq!(
            p.psk.as_deref(),
            Some("correct horse"),
            "one trailing newline dropped"
        );
        // A second add of the name is refused unless --replace; nothing changes.
        let e = run_add(d.path(), &argv, "other passphrase").unwrap_err();
        assert!(e.contains("--replace"), "{e}");
        let mut again = argv.to_vec();
        again.push("--replace");
        run_add(d.path(), &again, "new passphrase").unwrap();
    }

    #[test]
    fn bad_input_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        #[rustfmt::skip]
        let table: &[(&[&str], &str, &str)] = &[
            (&["Office", "--ssid", "x", "--security", "open"], "", "invalid network name"),
            (&["o", "--ssid", "x", "--security", "wpa2-psk", "--secret-stdin"], "short", "8 to 63"),
            (&["o", "--ssid", "x", "--security", "wpa2-psk", "--secret-stdin"], "\n", "empty"),
            (&["o", "--ssid", "", "--security", "open"], "", "SSID must be 1 to 32"),
            (&["o", "--ssid", "x", "--security", "open", "--secret-stdin"], "pw", "takes no secret"),
            (&["o", "--ssid", "x", "--security", "open", "--identity", "a"], "", "only for --security eap"),
            (&["o", "--ssid", "x", "--security", "eap", "--secret-stdin"], "pw", "--eap-method"),
            (&["o", "--ssid", "x", "--security", "eap", "--eap-method", "peap", "--secret-stdin"], "pw", "--identity"),
            (&["o", "--ssid", "x", "--security", "wpa2-psk/wpa3-sae", "--secret-stdin"],
             &"a".repeat(64), "no raw-PSK form"),
            (&["o", "--ssid", "x", "--security", "eap", "--eap-method", "tls", "--identity", "d",
               "--client-cert", "/nonexistent/c.pem", "--private-key", "/nonexistent/k.pem",
               "--secret-stdin"], "", "/nonexistent/c.pem"),
            (&["o", "--ssid", "x", "--security", "open", "--bssid", "zz"], "", "bssid"),
            (&["o", "--ssid", "x", "--security", "open", "--interface", "a/b"], "", "interfaces"),
        ];
        for (argv, stdin, want) in table {
            let e = run_add(d.path(), argv, stdin).expect_err(&format!("{argv:?}"));
            assert!(e.contains(want), "{argv:?}: {e}");
            assert!(
                !d.path().join("networks").join("o.toml").exists(),
                "{argv:?}"
            );
        }
        // Not even a secret in the refusal.
        let e = run_add(d.path(), table[1].0, "short").unwrap_err();
        assert!(!e.contains("short"), "{e}");
    }

    #[test]
    fn eap_with_root_owned_files_is_saved_and_show_prints_no_secret() {
        let d = tempfile::tempdir().unwrap();
        let ca = d.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let argv = [
            "corp",
            "--ssid",
            "Corp",
            "--security",
            "eap",
            "--eap-method",
            "peap",
            "--identity",
            "alice",
            "--ca-cert",
            ca.to_str().unwrap(),
            "--secret-stdin",
        ];
        run_add(d.path(), &argv, "s3cret pw").unwrap();
        let store = Store::new(d.path().join("networks"));
        let p = store.load(&Name::parse("corp").unwrap()).unwrap();
        assert_eq!(p.secrets_set(), ["eap.password"]);
        // The box copy carries the CA's PEM text, not the host path.
        let copy = String::from_utf8(p.for_box().unwrap()).unwrap();
        assert!(
            copy.contains("BEGIN CERTIFICATE") && !copy.contains("ca.pem"),
            "{copy}"
        );
        // A world-writable CA file is refused, with the chmod.
        std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut again = argv.to_vec();
        again.push("--replace");
        let e = run_add(d.path(), &again, "s3cret pw").unwrap_err();
        assert!(e.contains("chmod 644"), "{e}");
    }
}
