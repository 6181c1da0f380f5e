//! A TCP proxy to a server that a test can cut and restore, to make the server look gone (every
//! connection dropped, new ones refused) and come back, without touching the real server.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The proxy. Dropping it cuts it.
pub struct Proxy {
    target: SocketAddr,
    address: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    up: AtomicBool,
    /// Both ends of every connection made, to shut down on a cut.
    streams: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// A proxy on a free local port forwarding to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        let proxy = Proxy {
            target,
            address,
            shared: Arc::new(Shared {
                up: AtomicBool::new(true),
                streams: Mutex::new(Vec::new()),
            }),
        };
        proxy.serve(listener);
        proxy
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Drops every connection and refuses new ones, until [`restore`](Proxy::restore).
    pub fn cut(&self) {
        if !self.shared.up.swap(false, Ordering::SeqCst) {
            return;
        }
        // Wake the accepting thread so that it sees the flag and closes the listener.
        let _ = TcpStream::connect(self.address);
        for stream in self.shared.streams.lock().expect("streams").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // The listener is closed once the accepting thread has seen the flag; wait for that.
        while TcpStream::connect(self.address).is_ok() {
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Accepts connections again, on the same port.
    pub fn restore(&self) {
        let listener = TcpListener::bind(self.address).expect("bind the proxy again");
        self.shared.up.store(true, Ordering::SeqCst);
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let target = self.target;
        thread::spawn(move || {
            for client in listener.incoming() {
                if !shared.up.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                if forward(&shared, client, server).is_err() {
                    continue;
                }
            }
        });
    }
}

fn forward(shared: &Shared, client: TcpStream, server: TcpStream) -> io::Result<()> {
    let pairs = [
        (client.try_clone()?, server.try_clone()?),
        (server.try_clone()?, client.try_clone()?),
    ];
    shared
        .streams
        .lock()
        .expect("streams")
        .extend([client, server]);
    for (mut from, mut to) in pairs {
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
    Ok(())
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
