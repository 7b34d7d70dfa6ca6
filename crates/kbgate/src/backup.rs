//! `kbgate backup DIR`: a consistent copy of a SQLite store while it is in use.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use kbgate_config::{Config, StoreBackend};
use kbgate_store::{LocalBlobs, SqliteStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the copy goes: a directory, created if missing (0700). It receives the two
    /// database files under their own names and `blobs/`, i.e. the layout of a data_dir.
    dir: PathBuf,
    /// Replace backup files already in DIR (otherwise their presence is an error, so an
    /// earlier backup is never overwritten by mistake). Blobs already there are kept.
    #[arg(long)]
    force: bool,
    /// Leave the attachment files (data_dir/blobs) out. A restored store then serves pages
    /// at once and attachments after its next `kbgate sync` downloads them again.
    #[arg(long)]
    no_blobs: bool,
}

pub async fn run(config: &Path, args: Args) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            return ExitCode::from(2);
        }
    };
    if config.store.backend == StoreBackend::Postgres {
        eprintln!(
            "error: the store is PostgreSQL ({}); kbgate backup copies SQLite stores only.\n\
             Back it up with PostgreSQL's own tools, e.g.\n  \
             pg_dump --format=custom --file=kbgate.dump DATABASE_URL\n\
             and restore into an empty database with\n  \
             pg_restore --no-owner --dbname=NEW_DATABASE_URL kbgate.dump\n\
             The dump holds everything: mirror, sessions, audit, people and the attachment \
             bytes (the blobs tables); data_dir holds nothing that needs a backup.",
            config.store.url.redacted()
        );
        return ExitCode::from(2);
    }
    match backup(&config, &args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

async fn backup(config: &Config, args: &Args) -> anyhow::Result<()> {
    let data_dir = &config.store.data_dir;
    let url = config.store.url.expose();
    let files = kbgate_store::sqlite_files(url, data_dir)?
        .context("the store is in memory (sqlite::memory:): there is nothing on disk to back up")?;
    // Opening would create an empty store; a backup of nothing is a mistake to report.
    anyhow::ensure!(
        files.mirror.is_file(),
        "no store at {} (wrong --config or data_dir, or nothing synced yet)",
        files.mirror.display()
    );
    kbgate_store::private_fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let names = [&files.mirror, &files.ops].map(|p| p.file_name().map(PathBuf::from));
    let [Some(mirror_name), Some(ops_name)] = names else {
        anyhow::bail!("the store URL does not name a file");
    };
    let targets = [args.dir.join(&mirror_name), args.dir.join(&ops_name)];
    // Writing over the live databases would destroy them.
    for (target, live) in targets.iter().zip([&files.mirror, &files.ops]) {
        if let (Ok(a), Ok(b)) = (target.canonicalize(), live.canonicalize()) {
            anyhow::ensure!(
                a != b,
                "{} is the store itself: give a directory other than its data_dir",
                args.dir.display()
            );
        }
    }
    let blobs_dir = args.dir.join("blobs");
    let present: Vec<String> = targets
        .iter()
        .chain(std::iter::once(&blobs_dir))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    anyhow::ensure!(
        present.is_empty() || args.force,
        "{} already holds a backup ({}); use --force to replace it, or another directory",
        args.dir.display(),
        present.join(", ")
    );

    let store = SqliteStore::open(url, data_dir)
        .await
        .with_context(|| format!("cannot open the store {}", config.store.url.redacted()))?;
    let written = store
        .backup_into(&args.dir)
        .await
        .with_context(|| format!("cannot write the backup into {}", args.dir.display()))?;
    for path in &written {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("wrote {} ({len} bytes)", path.display());
    }
    if args.no_blobs {
        println!("attachment files left out (--no-blobs): `kbgate sync` downloads them again");
    } else {
        let blobs = LocalBlobs::new(data_dir);
        let dest = args.dir.clone();
        let (n, bytes) = tokio::task::spawn_blocking(move || blobs.copy_into(&dest))
            .await?
            .with_context(|| {
                format!(
                    "cannot copy the attachment files into {}",
                    blobs_dir.display()
                )
            })?;
        println!(
            "copied {n} attachment file(s) ({bytes} bytes) into {}",
            blobs_dir.display()
        );
    }
    println!(
        "To restore: stop kbgate, then into an empty data_dir put\n  {} as {}\n  {} as {}\n  {} as {}\nand start kbgate.",
        targets[0].display(),
        files.mirror.display(),
        targets[1].display(),
        files.ops.display(),
        blobs_dir.display(),
        data_dir.join("blobs").display(),
    );
    Ok(())
}
