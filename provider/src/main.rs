//! `pulumi-resource-securepipeline`: the plugin the Pulumi engine starts.
//! It listens on 127.0.0.1, prints its port as its first line, and serves
//! until the engine cancels it or it receives SIGINT/SIGTERM.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use securepipeline::engine_log::EngineLog;
use securepipeline::proto::pulumirpc::resource_provider_server::ResourceProviderServer;
use securepipeline::protocol::server::Provider;
use securepipeline::protocol::MAX_MESSAGE_SIZE;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long cancelled calls get to answer before the process exits.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest the process waits, once cancelled, for operations that
/// change AWS to finish; each is bounded by its own retry deadlines well
/// within this.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("pulumi-resource-securepipeline: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SECUREPIPELINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let log = Arc::new(EngineLog::default());
    // The engine passes its own address as the first argument.
    if let Some(address) = std::env::args().skip(1).find(|arg| !arg.starts_with('-')) {
        log.connect(&address)?;
    }

    let cancel = CancellationToken::new();
    let provider = Provider::new(VERSION, Arc::clone(&log), cancel.clone());
    let in_flight = provider.in_flight();
    let service = ResourceProviderServer::new(provider)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);

    // Watch for SIGINT/SIGTERM before announcing the port: from then on the
    // engine may signal at any time.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            cancel.cancel();
        });
    }

    // No Nagle delay: responses larger than a segment would otherwise wait
    // for the engine's delayed ACK (~40 ms a call).
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into())?.with_nodelay(Some(true));
    // The engine reads the port from the first line of stdout.
    println!("{}", incoming.local_addr()?.port());

    let server = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, cancel.clone().cancelled_owned());
    // Once cancelled, reads report themselves as cancelled and operations
    // that change AWS finish and report what they did; then a client that
    // keeps its connection open must not keep us alive.
    let grace = async {
        cancel.cancelled().await;
        if tokio::time::timeout(DRAIN_LIMIT, in_flight.drained())
            .await
            .is_err()
        {
            tracing::warn!("{} operations still running at exit", in_flight.count());
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result?,
        () = grace => tracing::debug!("connections still open after the grace period"),
    }
    Ok(())
}
