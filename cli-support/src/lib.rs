//! What every clickstream binary's command line shares.
//!
//! * [`parse`] — a clap `Parser` read from flags, environment variables and an optional TOML
//!   file named by the binary's `--config` flag. Precedence, highest first: flag, environment
//!   variable, config file, built-in default. File keys are long flag names (`flush-events =
//!   1000` or `flush_events = 1000`), of the binary or of any of its subcommands; lists are TOML
//!   arrays. An unknown key is an error that names it.
//! * [`paths`] — the local twin's state home and project venv, found from the executable's
//!   location, never the working directory.
//! * [`LogFormat`] and [`init_logging`] — `tracing` to standard error, as text or as JSON lines
//!   (which Cloud Logging parses), filtered by `RUST_LOG` (default `info`).

pub mod paths;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Command, Parser, ValueEnum};

/// A configuration problem, phrased as what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Flags or variables did not parse; clap's message says which and why.
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The config file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A combination of options that cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// Reads `P` from `args` (the first is the program name), the environment, and the TOML file
/// its `config` argument names, if any.
pub fn parse<P: Parser>(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<P, ConfigError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = P::command();
    let first_pass = P::command().ignore_errors(true).try_get_matches_from(args.iter().cloned())?;
    let config =
        first_pass.try_get_one::<PathBuf>("config").ok().flatten().or_else(|| {
            first_pass.subcommand().and_then(|(_, sub)| sub.try_get_one::<PathBuf>("config").ok().flatten())
        });
    if let Some(path) = config {
        command = apply_file_defaults(command, path)?;
    }
    let matches = command.try_get_matches_from(args)?;
    Ok(P::from_arg_matches(&matches)?)
}

/// The parsed configuration, or — when it did not parse — the process exits with status 2 after
/// saying why: clap's own message and usage for flags and variables, `program: problem` for the
/// config file and invalid combinations.
pub fn or_exit<T>(result: Result<T, ConfigError>, program: &str) -> T {
    match result {
        Ok(value) => value,
        Err(ConfigError::Args(error)) => error.exit(),
        Err(error) => {
            eprintln!("{program}: {error}");
            std::process::exit(2);
        }
    }
}

/// Sets the file's values as the defaults of the arguments they name, in `command` and in every
/// subcommand that has them.
fn apply_file_defaults(mut command: Command, path: &Path) -> Result<Command, ConfigError> {
    let file_error = |message: String| ConfigError::File { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| file_error(e.to_string()))?;
    let program = command.get_name().to_owned();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let values: Vec<String> = match value {
            toml::Value::Array(items) => items.iter().map(toml_scalar).collect::<Result<_, _>>(),
            scalar => toml_scalar(&scalar).map(|v| vec![v]),
        }
        .map_err(|message| file_error(format!("{key}: {message}")))?;
        let mut found = false;
        if long != "config" {
            command = set_default(command, &long, &values, &mut found);
        }
        if !found {
            return Err(file_error(format!("unknown option {key:?}; see {program} --help for the option names")));
        }
    }
    Ok(command)
}

fn set_default(mut command: Command, long: &str, values: &[String], found: &mut bool) -> Command {
    let id = command.get_arguments().find(|arg| arg.get_long() == Some(long)).map(|arg| arg.get_id().to_string());
    if let Some(id) = id {
        *found = true;
        command = command.mut_arg(id, |arg| arg.default_values(values.to_vec()));
    }
    let subcommands: Vec<String> = command.get_subcommands().map(|sub| sub.get_name().to_owned()).collect();
    for name in subcommands {
        command = command.mut_subcommand(name, |sub| set_default(sub, long, values, found));
    }
    command
}

fn toml_scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        toml::Value::Boolean(flag) => Ok(flag.to_string()),
        other => Err(format!("expected a string, number or boolean, got {}", other.type_str())),
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (Cloud Logging parses these).
    Json,
}

/// Sends `tracing` output to standard error in `format`, filtered by `RUST_LOG` (default
/// `info`). Standard output stays free for what a command prints (run summaries).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Subcommand};

    #[derive(Debug, Parser)]
    #[command(name = "tool")]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
        /// Config file.
        #[arg(long, global = true, env = "CLI_SUPPORT_TEST_CONFIG")]
        config: Option<PathBuf>,
        /// A global option.
        #[arg(long, global = true, default_value = "built-in")]
        lake: String,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        Run(RunArgs),
        Other,
    }

    #[derive(Debug, Args)]
    struct RunArgs {
        #[arg(long, default_value_t = 10)]
        flush_events: usize,
        #[arg(long)]
        hour: Vec<String>,
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn run_args(cli: Cli) -> RunArgs {
        match cli.command {
            Sub::Run(args) => args,
            Sub::Other => panic!("not run"),
        }
    }

    #[test]
    fn file_values_are_defaults_for_global_and_subcommand_options_and_flags_win() {
        let (_dir, path) = write("lake = \"from-file\"\nflush_events = 7\nhour = [\"a\", \"b\"]\n");
        let path = path.to_str().unwrap();
        let cli: Cli = parse(["tool", "run", "--config", path]).unwrap();
        assert_eq!(cli.lake, "from-file");
        let args = run_args(cli);
        assert_eq!((args.flush_events, args.hour), (7, vec!["a".to_owned(), "b".to_owned()]));
        let cli: Cli = parse(["tool", "--config", path, "run", "--flush-events", "3", "--lake", "flag"]).unwrap();
        assert_eq!(cli.lake, "flag");
        assert_eq!(run_args(cli).flush_events, 3);
    }

    #[test]
    fn no_file_keeps_the_built_in_defaults() {
        let cli: Cli = parse(["tool", "run"]).unwrap();
        assert_eq!(cli.lake, "built-in");
        assert_eq!(run_args(cli).flush_events, 10);
    }

    #[test]
    fn unknown_keys_bad_values_and_missing_files_say_what_to_fix() {
        let (_dir, path) = write("flush_evnets = 7\n");
        let error = parse::<Cli>(["tool", "run", "--config", path.to_str().unwrap()]).unwrap_err().to_string();
        assert!(error.contains("unknown option \"flush_evnets\"") && error.contains("tool --help"), "{error}");
        let (_dir, path) = write("flush_events = { a = 1 }\n");
        let error = parse::<Cli>(["tool", "run", "--config", path.to_str().unwrap()]).unwrap_err().to_string();
        assert!(error.contains("flush_events: expected a string, number or boolean"), "{error}");
        let error = parse::<Cli>(["tool", "run", "--config", "/nonexistent/tool.toml"]).unwrap_err().to_string();
        assert!(error.starts_with("config file /nonexistent/tool.toml:"), "{error}");
        let (_dir, path) = write("flush_events = \"many\"\n");
        let error = parse::<Cli>(["tool", "run", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(matches!(error, ConfigError::Args(_)), "{error}");
    }
}
