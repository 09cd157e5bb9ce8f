//! `peerlite backup DB [NAME] [--dir DIR]` (or `--kv STORE_DIR STORE_ID [NAME]`): prints the
//! backup's path; `--json` gives name, path, pages, bytes, checksum.

use peerlite::BackupRequest;

use super::print_json;
use super::target::{Bar, KvTarget, Mode};
use crate::{Global, UsageError};

/// Arguments of `peerlite backup`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB [NAME] — or, with --kv, just [NAME]. NAME defaults to backup-<UTC time>.
    #[arg(value_name = "DB [NAME]")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
    /// Write the backup into this directory instead of backup/<file>/ beside the store.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Pages copied per step.
    #[arg(long, hide = true, default_value_t = 1024)]
    step_pages: i32,
}

/// Runs `peerlite backup`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let (location, rest) = args.target.locate(args.positionals)?;
    if rest.len() > 1 {
        return Err(UsageError(format!("one backup name at most, got {rest:?}")).into());
    }
    let name = rest
        .into_iter()
        .next()
        .unwrap_or_else(peerlite::backup::default_backup_name);
    let store = location.open(global, Mode::Recovery)?;
    let bar = Bar::new("backup");
    let mut progress = |p| bar.update(p);
    let mut request = BackupRequest::named(name)
        .pages_per_step(args.step_pages)
        .on_progress(&mut progress);
    if let Some(dir) = args.dir {
        request = request.dir(dir);
    }
    let info = store.backup_with(request)?;
    bar.finish();
    if global.json {
        print_json(&serde_json::json!({
            "name": info.name,
            "path": info.path,
            "pages": info.page_count,
            "bytes": info.size_bytes,
            "checksum": info.checksum,
            "version": info.version,
            "created": info.created,
            "restarts": info.restarts,
        }));
    } else {
        println!("{}", info.path.display());
    }
    Ok(())
}
