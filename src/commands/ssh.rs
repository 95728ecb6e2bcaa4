//! `minik ssh`: a login shell or one command in a node, over the driver's Runner.

use super::{Context, live_nodes, state_of};
use crate::cli::SshArgs;
use crate::cluster::{pick_node, require_running};
use minik_driver_api::{Driver, ExecRequest, Runner, StdinSource};
use std::io::IsTerminal;

pub async fn run(ctx: &Context, args: SshArgs) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let node = pick_node(&profile, args.node.as_deref())?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    require_running(&profile, &node.name, state_of(&live, &node.name))?;
    let runner = driver.runner(&node.name);

    let interactive = args.command.is_empty();
    let tty = interactive && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let argv = if interactive {
        vec!["/bin/bash".to_string(), "-l".to_string()]
    } else {
        args.command.clone()
    };
    let mut request = ExecRequest::new(argv);
    request.tty = tty;
    request.env.push(format!(
        "TERM={}",
        std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
    ));
    // Pipe stdin through when it is a pipe or file (`docker save X | minik ssh -- ctr import -`)
    // or for an interactive shell; a terminal with a one-off command keeps it to itself.
    if !std::io::stdin().is_terminal() || interactive {
        request.stdin = StdinSource::Stream(Box::new(tokio::io::stdin()));
    }
    let _raw = if tty {
        request.tty_size = terminal::size();
        terminal::RawMode::enable()
    } else {
        None
    };
    let mut stdout = crate::ui::out::Stdout::new();
    let mut stderr = tokio::io::stderr();
    let code = runner
        .exec_streaming(request, &mut stdout, &mut stderr)
        .await?;
    tokio::io::AsyncWriteExt::flush(&mut stdout).await.ok();
    Ok(code.clamp(0, 255) as u8)
}

/// Raw terminal mode for interactive shells, restored on drop.
mod terminal {
    use nix::sys::termios::{self, SetArg, Termios};

    pub struct RawMode {
        saved: Termios,
    }

    impl RawMode {
        pub fn enable() -> Option<RawMode> {
            let stdin = std::io::stdin();
            let saved = termios::tcgetattr(&stdin).ok()?;
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
            Some(RawMode { saved })
        }
    }

    impl Drop for RawMode {
        fn drop(&mut self) {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
        }
    }

    /// (columns, rows) of the terminal on stdout.
    pub fn size() -> Option<(u16, u16)> {
        let mut ws = nix::libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize into the pointed-to struct, which lives on our stack.
        let r = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut ws) };
        (r == 0 && ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
    }
}
