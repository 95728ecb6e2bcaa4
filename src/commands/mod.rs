//! One module per verb. Each command returns the process exit code or an error carrying a
//! reason (see `errors`).

mod addons;
mod delete;
mod image;
mod kubectl;
mod lifecycle;
mod logs;
mod node;
mod node_image;
mod profile;
mod ssh;
mod start;
mod status;
mod update_context;

use crate::any_driver::AnyDriver;
use crate::cli::{
    AddonsCommand, Command, GlobalArgs, ImageCommand, NodeCommand, NodeImageCommand, OutputFormat,
    ProfileCommand,
};
use crate::errors::{GUEST_NOT_FOUND, fail_with};
use crate::state::{Home, Profile, ProfileLoad, validate_profile_name};
use crate::ui::{Mode, Reporter};
use minik_driver_api::{Driver, NodeInfo};

/// What every command gets: paths, global flags and the reporter.
pub struct Context {
    pub home: Home,
    pub global: GlobalArgs,
    pub reporter: Reporter,
}

impl Context {
    pub fn new(global: GlobalArgs) -> anyhow::Result<Context> {
        let mode = Mode::detect(
            global.output == OutputFormat::Json,
            global.no_progress,
            global.quiet,
        );
        Ok(Context {
            home: Home::from_env()?,
            reporter: Reporter::new(mode),
            global,
        })
    }

    /// The paths and reporter the layers below the commands take.
    pub fn session(&self) -> crate::session::Session<'_> {
        crate::session::Session {
            home: &self.home,
            reporter: &self.reporter,
        }
    }

    pub fn json(&self) -> bool {
        self.global.output == OutputFormat::Json
    }

    pub fn profile_name(&self) -> anyhow::Result<&str> {
        validate_profile_name(&self.global.profile)?;
        Ok(&self.global.profile)
    }

    /// Loads the profile named by `-p`; GUEST_NOT_FOUND when it does not exist, or
    /// GUEST_PROFILE_ORPHANED when an engine still holds resources labelled with its name
    /// (`minik start` would refuse those too: `delete` is the way out).
    pub async fn load_profile(&self) -> anyhow::Result<Profile> {
        let name = self.profile_name()?;
        match Profile::load(&self.home, name)? {
            ProfileLoad::Found(p) => Ok(p),
            ProfileLoad::Missing => Err(self.missing(name).await),
        }
    }

    /// The error for profile `name` without a profile file (see [`Context::load_profile`]).
    pub async fn missing(&self, name: &str) -> anyhow::Error {
        for driver in AnyDriver::reachable(&self.home).await {
            if driver
                .list_profiles()
                .await
                .is_ok_and(|p| p.iter().any(|p| p == name))
            {
                return fail_with(
                    &crate::errors::GUEST_PROFILE_ORPHANED,
                    format!(
                        "profile \"{name}\" has no profile file, but {} resources labelled with it exist",
                        driver.name()
                    ),
                    format!("Run `minik delete -p {name}` to remove them, then start again."),
                );
            }
        }
        not_found(name)
    }
}

pub fn not_found(name: &str) -> anyhow::Error {
    let advice = if name == "minik" {
        "Create it with `minik start`, or list profiles with `minik profile list`.".to_string()
    } else {
        format!(
            "Create it with `minik start -p {name}`, or list profiles with `minik profile list`."
        )
    };
    fail_with(
        &GUEST_NOT_FOUND,
        format!("profile \"{name}\" does not exist"),
        advice,
    )
}

/// Connects to a profile's driver and reads its nodes' live state.
pub async fn live_nodes(
    ctx: &Context,
    profile: &Profile,
) -> anyhow::Result<(AnyDriver, Vec<NodeInfo>)> {
    let driver = AnyDriver::connect(&profile.driver, &ctx.home)?;
    driver.check_explained().await?;
    let nodes = driver.list_nodes(&profile.name).await?;
    Ok((driver, nodes))
}

pub use crate::cluster::state_of;

/// Runs a parsed command.
pub async fn run(ctx: &Context, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Start(args) => start::run(ctx, args).await,
        Command::Status(args) => status::run(ctx, args).await,
        Command::Stop(args) => lifecycle::stop(ctx, args).await,
        Command::Pause(args) => lifecycle::pause(ctx, args).await,
        Command::Unpause(args) => lifecycle::unpause(ctx, args).await,
        Command::Delete(args) => delete::run(ctx, args).await,
        Command::Profile {
            command: ProfileCommand::List,
        } => profile::list(ctx).await,
        Command::Ssh(args) => ssh::run(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Kubectl(args) => kubectl::run(ctx, args).await,
        Command::UpdateContext => update_context::run(ctx).await,
        Command::Node {
            command: NodeCommand::Add(args),
        } => node::add(ctx, args).await,
        Command::Node {
            command: NodeCommand::Delete(args),
        } => node::delete(ctx, args).await,
        Command::Node {
            command: NodeCommand::List,
        } => node::list(ctx).await,
        Command::NodeImage {
            command: NodeImageCommand::Build(args),
        } => node_image::build(ctx, args).await,
        Command::Addons {
            command: AddonsCommand::List,
        } => addons::list(ctx).await,
        Command::Addons {
            command: AddonsCommand::Enable(args),
        } => addons::enable(ctx, args).await,
        Command::Addons {
            command: AddonsCommand::Disable(args),
        } => addons::disable(ctx, args).await,
        Command::Addons {
            command: AddonsCommand::Images(args),
        } => addons::images(ctx, args).await,
        Command::Image {
            command: ImageCommand::Load(args),
        } => image::load(ctx, args).await,
        Command::Image {
            command: ImageCommand::Ls,
        } => image::list(ctx).await,
        Command::Image {
            command: ImageCommand::Rm(args),
        } => image::remove(ctx, args).await,
        Command::Version => {
            version(ctx);
            Ok(0)
        }
        Command::Completion { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "minik", &mut script);
            crate::ui::out::write(&script);
            Ok(0)
        }
    }
}

fn version(ctx: &Context) {
    let version = env!("CARGO_PKG_VERSION");
    let recipe = crate::node_image::recipe_hash();
    if ctx.json() {
        crate::outln!(
            "{}",
            serde_json::json!({"version": version, "node_image_recipe": recipe})
        );
    } else {
        crate::outln!("minik version v{version}");
        crate::outln!(
            "node image recipe: {recipe} ({})",
            crate::node_image::default_tag("none")
        );
    }
}
