//! `kbgate sync`: mirror the audiences' spaces into the store.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use kbgate_config::Config;
use kbgate_mirror::sync::{
    BLOB_GRACE, Progress, SyncOptions, confluence::ConfluenceSource, forget, sync_spaces,
};

use crate::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Re-read every page and attachment instead of only what changed since the last sync.
    #[arg(long)]
    full: bool,
    /// Sync only this space (repeatable). Default: every space named by an audience.
    #[arg(long = "space", value_name = "KEY")]
    spaces: Vec<String>,
    /// When another process is syncing a space (e.g. `kbgate serve`'s background sync), wait
    /// up to this many seconds for it to finish, then sync the space; without it, or when the
    /// wait runs out, the space is skipped with a line naming the other sync.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait: u64,
}

pub async fn run(config: &Path, args: Args) -> ExitCode {
    match sync(config, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

async fn sync(config: &Path, args: Args) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let client = wiring::confluence_client(&config).await?;
    let store = wiring::open_store(&config).await?;
    let all = args.spaces.is_empty();
    let keys = if all {
        kbgate_service::mirrored_spaces(&config)
    } else {
        args.spaces
    };
    anyhow::ensure!(
        !keys.is_empty(),
        "no audience names a space: add an [[audience]] with spaces to {}",
        config.path.display()
    );
    let source = ConfluenceSource::new(client);
    let opts = SyncOptions {
        lease_wait: std::time::Duration::from_secs(args.wait),
        ..kbgate_service::sync_options(&config, args.full)
    };
    let report = sync_spaces(&source, &*store, &keys, &opts, &Progress::auto())
        .await
        .context("sync failed")?;
    println!("{report}");
    // Only a sync of every named space knows which mirrored spaces no audience names.
    if all {
        let forgot = forget(&*store, &keys, BLOB_GRACE)
            .await
            .context("cannot remove what the policy no longer names")?;
        if !forgot.is_empty() {
            println!("{forgot}");
        }
    }
    Ok(())
}
