//! Where the local twin keeps its state, found without looking at the working directory.
//!
//! The binaries default their spool, lake and warehouse paths to folders of one **state home**
//! so that `clickstream-loader load` means the same thing from any directory:
//!
//! 1. `CLICKSTREAM_HOME`, when set;
//! 2. else `.clickstream/` of the checkout the binary was built in (see [`checkout`]: the clone
//!    whose `target/` holds it, or the one it was compiled from) — what `make run` and `make up`
//!    use;
//! 3. else `$XDG_DATA_HOME/clickstream` (`~/.local/share/clickstream`), for an installed binary.
//!
//! Every such path also has its own flag and environment variable, which take precedence.

use std::path::{Path, PathBuf};

/// The environment variable naming the state home.
pub const HOME_ENV: &str = "CLICKSTREAM_HOME";

/// The checkout (repository root) the running executable belongs to: the nearest ancestor of
/// its path holding both `Cargo.toml` and `dbt/dbt_project.yml`, else the checkout it was
/// compiled from when that still exists (a target directory outside the clone,
/// `CARGO_TARGET_DIR`). `None` for a binary installed elsewhere.
pub fn checkout() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok();
    let exe = exe.map(|exe| exe.canonicalize().unwrap_or(exe));
    exe.and_then(|exe| checkout_above(&exe)).or_else(|| {
        // cli-support/ of the workspace this binary was built in
        checkout_above(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
    })
}

fn checkout_above(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("dbt").join("dbt_project.yml").is_file())
        .map(Path::to_path_buf)
}

/// The state home (see the module documentation).
pub fn state_home() -> PathBuf {
    state_home_from(std::env::var_os(HOME_ENV).map(PathBuf::from), checkout(), data_home())
}

fn state_home_from(explicit: Option<PathBuf>, checkout: Option<PathBuf>, data_home: Option<PathBuf>) -> PathBuf {
    explicit
        .filter(|dir| !dir.as_os_str().is_empty())
        .or_else(|| checkout.map(|root| root.join(".clickstream")))
        .or_else(|| data_home.map(|dir| dir.join("clickstream")))
        .unwrap_or_else(|| PathBuf::from(".clickstream"))
}

fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("share")))
}

/// `name` inside the state home: the default of a `--spool-dir`, `--lake` or `--duckdb-path`.
pub fn in_state_home(name: &str) -> PathBuf {
    state_home().join(name)
}

/// The Python of the checkout's project venv (`.venv/bin/python`, made by
/// `scripts/python-env.sh`), when the binary runs from a checkout that has one.
pub fn project_python() -> Option<PathBuf> {
    checkout().map(|root| root.join(".venv").join("bin").join("python")).filter(|python| python.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_home_is_the_explicit_one_then_the_checkouts_then_the_data_home() {
        let (explicit, checkout, data) =
            (PathBuf::from("/srv/twin"), PathBuf::from("/src/clickstream"), PathBuf::from("/home/u/.local/share"));
        let home = |e: Option<&PathBuf>, c: Option<&PathBuf>, d: Option<&PathBuf>| {
            state_home_from(e.cloned(), c.cloned(), d.cloned())
        };
        assert_eq!(home(Some(&explicit), Some(&checkout), Some(&data)), explicit);
        assert_eq!(home(Some(&PathBuf::new()), Some(&checkout), None), checkout.join(".clickstream"));
        assert_eq!(home(None, Some(&checkout), Some(&data)), checkout.join(".clickstream"));
        assert_eq!(home(None, None, Some(&data)), data.join("clickstream"));
    }

    #[test]
    fn a_checkout_is_found_above_a_binary_in_its_target_directory() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("dbt")).unwrap();
        std::fs::create_dir_all(root.join("target/release")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(root.join("dbt/dbt_project.yml"), "name: x\n").unwrap();
        assert_eq!(checkout_above(&root.join("target/release/clickstream-loader")), Some(root.clone()));
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(checkout_above(&elsewhere.path().join("bin/clickstream-loader")), None);
    }
}
