//! `tracker serve --config FILE`: settings from a TOML file, merged into the one
//! settings type the command line already parses (`ServeArgs`), so a setting has
//! one name, one check and one help text whichever way it arrives.
//!
//! A key is a long flag's name (`max-connections` or `max_connections`); a value
//! is a string, number or boolean, or an array for a flag that may be repeated
//! (`trusted-proxy = ["10.0.0.0/8", "127.0.0.1"]`). Precedence, strongest first:
//! a flag on the command line, the flag's environment variable, the file, the
//! built-in default. The file is read before clap parses, and each of its
//! settings that neither the command line nor the environment gives becomes
//! flags placed right after the subcommand, so clap checks them exactly as if
//! they had been typed. An unknown key, a value of the wrong shape or a file that
//! does not parse is bad input (exit 2) naming the file and the key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Command};

use super::bad_input;

/// The subcommands that take `--config`.
const WITH_CONFIG: &[&str] = &["serve"];

/// The environment variable naming a config file when `--config` is not given.
pub(crate) const CONFIG_ENV: &str = "TRACKER_CONFIG";

/// Returns `args` with the settings of the config file (if any) inserted as flags
/// after the subcommand. `command` is the whole CLI, for the flags' names,
/// actions and environment variables. `env` reads an environment variable.
pub(crate) fn expand(
    args: Vec<OsString>,
    command: &Command,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Vec<OsString>> {
    let Some(sub_at) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
    else {
        return Ok(args);
    };
    let sub_at = sub_at + 1;
    let sub_name = args[sub_at].to_string_lossy().into_owned();
    if !WITH_CONFIG.contains(&sub_name.as_str()) {
        return Ok(args);
    }
    let Some(sub) = command.find_subcommand(&sub_name) else {
        return Ok(args);
    };
    let given = &args[sub_at + 1..];
    let Some(path) = config_path(given).or_else(|| env(CONFIG_ENV).map(PathBuf::from)) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad_input(format!("--config {}: {e}", path.display())))?;
    let inserted = flags_from_toml(&path, &text, sub, given, env)?;
    let mut out = args[..=sub_at].to_vec();
    out.extend(inserted);
    out.extend_from_slice(given);
    Ok(out)
}

/// `--config PATH` or `--config=PATH` among the subcommand's arguments.
fn config_path(given: &[OsString]) -> Option<PathBuf> {
    let mut it = given.iter();
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            return None;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    None
}

/// The flags the file's settings stand for, leaving out those the command line or
/// the environment already gives.
fn flags_from_toml(
    path: &Path,
    text: &str,
    sub: &Command,
    given: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Vec<OsString>> {
    let file = path.display();
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad_input(format!("--config {file}: {}", e.message())))?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .ok_or_else(|| {
                bad_input(format!(
                    "--config {file}: unknown setting `{key}` (`tracker {} --help` lists them)",
                    sub.get_name()
                ))
            })?;
        let on_command_line = given.iter().any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{long}") || a.starts_with(&format!("--{long}="))
        });
        let from_env = arg
            .get_env()
            .and_then(|name| env(&name.to_string_lossy()))
            .is_some();
        if on_command_line || from_env {
            continue;
        }
        let flag = OsString::from(format!("--{long}"));
        let wrong = |what: &str| bad_input(format!("--config {file}: `{key}` {what}"));
        // Each value goes through the flag's own parser here, so a bad one is
        // reported with the file and the key it was written under.
        let probe = Command::new("config").no_binary_name(true).arg(
            clap::Arg::new(arg.get_id().clone())
                .action(arg.get_action().clone())
                .allow_hyphen_values(true)
                .value_parser(arg.get_value_parser().clone()),
        );
        let checked = |value: OsString| -> anyhow::Result<OsString> {
            match probe.clone().try_get_matches_from([value.clone()]) {
                Ok(_) => Ok(value),
                Err(err) => Err(wrong(&format!(
                    "= {}: {}",
                    value.to_string_lossy(),
                    clap_reason(&err)
                ))),
            }
        };
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(on)) => {
                if *on {
                    flags.push(flag);
                }
            }
            (ArgAction::SetTrue, _) => return Err(wrong("is a switch: true or false")),
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    flags.push(flag.clone());
                    flags.push(checked(scalar(item).ok_or_else(|| {
                        wrong("must be an array of strings, numbers or booleans")
                    })?)?);
                }
            }
            (_, toml::Value::Array(_)) => return Err(wrong("takes one value, not an array")),
            (_, v) => {
                let value = checked(
                    scalar(v).ok_or_else(|| wrong("must be a string, a number or a boolean"))?,
                )?;
                flags.push(flag);
                flags.push(value);
            }
        }
    }
    Ok(flags)
}

/// Why clap refused a value, in one line: the parser's own reason when it has
/// one (`invalid digit found in string`), else the first line of clap's message
/// (which lists the possible values on the lines after).
fn clap_reason(err: &clap::Error) -> String {
    use std::error::Error as _;
    match err.source() {
        Some(reason) => reason.to_string(),
        None => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    }
}

fn scalar(value: &toml::Value) -> Option<OsString> {
    match value {
        toml::Value::String(s) => Some(s.into()),
        toml::Value::Integer(i) => Some(i.to_string().into()),
        toml::Value::Float(f) => Some(f.to_string().into()),
        toml::Value::Boolean(b) => Some(b.to_string().into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn cli() -> Command {
        Command::new("tracker").subcommand(
            Command::new("serve")
                .arg(Arg::new("config").long("config"))
                .arg(Arg::new("listen").long("listen").env("TRACKER_LISTEN"))
                .arg(
                    Arg::new("max-connections")
                        .long("max-connections")
                        .value_parser(clap::value_parser!(usize)),
                )
                .arg(
                    Arg::new("trusted-proxy")
                        .long("trusted-proxy")
                        .action(ArgAction::Append),
                )
                .arg(
                    Arg::new("no-demo")
                        .long("no-demo")
                        .action(ArgAction::SetTrue),
                ),
        )
    }

    fn run(file: &str, argv: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tracker.toml");
        std::fs::write(&path, file).expect("write");
        let mut args: Vec<OsString> = vec!["tracker".into(), "serve".into()];
        args.extend(argv.iter().map(OsString::from));
        args.push("--config".into());
        args.push(path.clone().into());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        };
        let out = expand(args, &cli(), &lookup)?;
        Ok(out
            .iter()
            .skip(2)
            .take_while(|a| *a != "--config")
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[test]
    fn file_settings_become_flags_after_the_subcommand() {
        let flags = run(
            "listen = \"0.0.0.0:80\"\nmax_connections = 500\nno-demo = true\n",
            &[],
            &[],
        )
        .expect("valid file");
        assert_eq!(
            flags,
            [
                "--listen",
                "0.0.0.0:80",
                "--max-connections",
                "500",
                "--no-demo"
            ]
        );
    }

    #[test]
    fn the_command_line_and_the_environment_beat_the_file() {
        let flags = run(
            "listen = \"0.0.0.0:80\"\nmax-connections = 500\n",
            &["--max-connections=9"],
            &[("TRACKER_LISTEN", "127.0.0.1:1")],
        )
        .expect("valid file");
        // Neither comes from the file; the command line's own flag follows.
        assert_eq!(flags, ["--max-connections=9"]);
    }

    #[test]
    fn a_repeatable_flag_takes_an_array_and_a_false_switch_is_left_off() {
        let flags = run(
            "trusted-proxy = [\"10.0.0.0/8\", \"127.0.0.1\"]\nno-demo = false\n",
            &[],
            &[],
        )
        .expect("valid file");
        assert_eq!(
            flags,
            [
                "--trusted-proxy",
                "10.0.0.0/8",
                "--trusted-proxy",
                "127.0.0.1"
            ]
        );
    }

    #[test]
    fn mistakes_name_the_file_and_the_key() {
        let unknown = run("listne = \"x\"\n", &[], &[]).expect_err("unknown key");
        assert!(
            unknown.to_string().contains("unknown setting `listne`"),
            "{unknown}"
        );
        assert!(unknown.to_string().contains("tracker.toml"), "{unknown}");
        let switch = run("no-demo = \"yes\"\n", &[], &[]).expect_err("not a bool");
        assert!(
            switch.to_string().contains("`no-demo` is a switch"),
            "{switch}"
        );
        let array = run("listen = [\"a\"]\n", &[], &[]).expect_err("one value");
        assert!(array.to_string().contains("not an array"), "{array}");
        let syntax = run("listen = \n", &[], &[]).expect_err("not TOML");
        assert!(syntax.to_string().contains("--config"), "{syntax}");
        assert!(unknown.downcast_ref::<super::super::BadInput>().is_some());
    }

    #[test]
    fn a_bad_value_names_the_file_and_the_key() {
        let err = run("max-connections = \"many\"\n", &[], &[]).expect_err("not a number");
        let message = err.to_string();
        assert!(message.contains("tracker.toml"), "{message}");
        assert!(
            message.contains("`max-connections` = many: invalid digit"),
            "{message}"
        );
        assert!(err.downcast_ref::<super::super::BadInput>().is_some());
        let negative = run("max-connections = -3\n", &[], &[]).expect_err("negative");
        assert!(
            negative.to_string().contains("`max-connections` = -3"),
            "{negative}"
        );
    }

    /// The shipped example (`tracker.example.toml`) parses with the real
    /// command line into the serve settings, so it cannot go stale.
    #[test]
    fn the_example_file_is_a_valid_serve_configuration() {
        use clap::{CommandFactory, Parser};
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tracker.example.toml");
        let args: Vec<OsString> = vec![
            "tracker".into(),
            "serve".into(),
            "--config".into(),
            path.clone().into(),
        ];
        let expanded =
            expand(args, &crate::Cli::command(), &|_| None).expect("the example is valid");
        assert!(
            expanded.len() > 4,
            "the example sets something: {expanded:?}"
        );
        let cli = crate::Cli::try_parse_from(&expanded).expect("clap accepts the example");
        let crate::Command::Serve(settings) = cli.command else {
            panic!("the example is for serve");
        };
        let text = std::fs::read_to_string(&path).expect("the example file");
        let table: toml::Table = text.parse().expect("TOML");
        assert_eq!(
            settings.listen(),
            table["listen"].as_str().expect("listen is a string"),
            "the file's listen address is the one serve gets"
        );
    }

    /// The three-node set-up (`deploy/systemd/`): the shared file with each
    /// node's environment file parses into serve settings, every variable in
    /// an environment file is one a serve flag reads, and the node's own
    /// address wins over anything shared.
    #[test]
    fn the_three_node_files_are_valid_serve_configurations() {
        use clap::{CommandFactory, Parser};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
        let command = crate::Cli::command();
        let serve = command.find_subcommand("serve").expect("serve exists");
        for node in ["a", "b", "c"] {
            let env_path = dir.join(format!("{node}.env"));
            let text = std::fs::read_to_string(&env_path).expect("the node's environment file");
            let vars: Vec<(String, String)> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("KEY=VALUE lines");
                    (k.to_string(), v.to_string())
                })
                .collect();
            // clap reads the real environment, which a test must not change:
            // each variable becomes the flag that reads it.
            let mut args: Vec<OsString> = vec!["tracker".into(), "serve".into()];
            for (key, value) in &vars {
                let flag = serve
                    .get_arguments()
                    .find(|a| a.get_env().is_some_and(|e| e == key.as_str()))
                    .and_then(|a| a.get_long())
                    .unwrap_or_else(|| panic!("{}: no serve flag reads {key}", env_path.display()));
                args.push(format!("--{flag}").into());
                args.push(value.into());
            }
            args.push("--config".into());
            args.push(dir.join("tracker.toml").into());
            let lookup = |name: &str| {
                vars.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| OsString::from(v))
            };
            let expanded =
                expand(args, &command, &lookup).expect("the shared file is a valid configuration");
            let cli =
                crate::Cli::try_parse_from(&expanded).expect("clap accepts the node's set-up");
            let crate::Command::Serve(settings) = cli.command else {
                panic!("the files are for serve");
            };
            let listen = vars
                .iter()
                .find(|(k, _)| k == "TRACKER_LISTEN")
                .map(|(_, v)| v.as_str());
            assert_eq!(
                Some(settings.listen()),
                listen,
                "node {node} listens where its file says"
            );
        }
    }

    #[test]
    fn no_config_no_change() {
        let args: Vec<OsString> = ["tracker", "serve", "--listen", "x"]
            .iter()
            .map(OsString::from)
            .collect();
        let out = expand(args.clone(), &cli(), &|_| None).expect("nothing to read");
        assert_eq!(out, args);
    }
}
