//! Three "hosts" made of Linux network namespaces on one bridge, for the multi-host test.
//!
//! Layout (names carry the test's pid, so parallel runs do not collide): a hub namespace holds
//! a bridge; each host namespace has one veth end named `eth0` with address
//! `10.231.<subnet>.<host + 1>/24`, its other end plugged into the bridge. Nothing is created in
//! the caller's own namespace. [`Hosts`] tears everything down when dropped, also when the test
//! panics, and kills the processes it spawned.

use std::io;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

/// Why the machine cannot run the multi-host test (not root, no `ip`, no namespaces).
#[derive(Debug)]
pub struct Unsupported(pub String);

/// The hosts, their namespaces and the processes spawned in them.
#[derive(Debug)]
pub struct Hosts {
    prefix: String,
    subnet: u8,
    count: usize,
    created: Vec<String>,
    children: Vec<Child>,
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Hosts {
    /// Creates `count` hosts (at most 200) on one bridge, or says why it cannot.
    pub fn create(count: usize) -> Result<Hosts, Unsupported> {
        match Command::new("id").arg("-u").output() {
            Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "0" => {}
            Ok(_) => return Err(Unsupported("not running as root".into())),
            Err(e) => return Err(Unsupported(format!("cannot run `id`: {e}"))),
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return Err(Unsupported("iproute2 (`ip`) is not installed".into()));
        }
        let pid = std::process::id();
        let mut hosts = Hosts {
            prefix: format!("op2p{pid}"),
            subnet: (pid % 250) as u8 + 1,
            count: count.min(200),
            created: Vec::new(),
            children: Vec::new(),
        };
        hosts
            .build()
            .map_err(|e| Unsupported(format!("cannot create network namespaces: {e}")))?;
        Ok(hosts)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The namespace of host `i`.
    pub fn namespace(&self, i: usize) -> String {
        self.ns(&format!("h{i}"))
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.subnet, i as u8 + 1)
    }

    fn add_ns(&mut self, name: &str) -> io::Result<()> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    fn build(&mut self) -> io::Result<()> {
        let hub = self.ns("hub");
        self.add_ns(&hub)?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..self.count {
            let host = self.namespace(i);
            self.add_ns(&host)?;
            let port = format!("p{i}");
            // Created inside the hub, the host's end is then moved into the host.
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &host,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", self.addr(i));
            ip(&["-n", &host, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// Runs `program args` inside host `i` (via `ip netns exec`), with piped stdin and stdout.
    /// The process is killed when the hosts are dropped; it also should exit when its stdin
    /// closes.
    pub fn spawn(&mut self, i: usize, program: &str, args: &[String]) -> io::Result<&mut Child> {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace(i), program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        self.children.push(child);
        let last = self.children.len() - 1;
        Ok(&mut self.children[last])
    }

    /// Cuts host `i`'s link: its bridge port goes down, so its packets are lost (no reset, no
    /// close: the others can only notice the silence).
    pub fn cut(&self, i: usize) -> io::Result<()> {
        ip(&[
            "-n",
            &self.ns("hub"),
            "link",
            "set",
            &format!("p{i}"),
            "down",
        ])
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace deletes its interfaces (and their veth peers).
        for name in self.created.iter().rev() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
