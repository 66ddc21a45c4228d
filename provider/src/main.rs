//! `pulumi-resource-securepipeline`: the plugin the Pulumi engine starts.
//! It listens on 127.0.0.1, prints its port as its first line, and serves
//! until the engine cancels it or it receives SIGINT/SIGTERM.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use securepipeline::engine_log::EngineLog;
use securepipeline::proto::pulumirpc::resource_provider_server::ResourceProviderServer;
use securepipeline::protocol::server::Provider;
use securepipeline::protocol::MAX_MESSAGE_SIZE;

const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    let service = ResourceProviderServer::new(provider)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);

    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    // The engine reads the port from the first line of stdout.
    println!("{}", listener.local_addr()?.port());

    let shutdown = {
        let cancel = cancel.clone();
        async move {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|err| tracing::warn!("cannot watch SIGTERM: {err}"))
                    .ok();
            let sigterm = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                () = sigterm => {},
                () = cancel.cancelled() => {},
            }
            // Abandon in-flight operations; each reports itself as cancelled.
            cancel.cancel();
        }
    };

    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
