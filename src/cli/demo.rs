//! `frontdesk demo`: a self-contained instance anyone can try without keys. It writes its
//! config to DATA_DIR/config.toml (generated secrets), starts the server, a fake Graph API
//! and the WhatsApp simulator at `/demo`, and prints what to open. It loads the bike
//! shop's documents; replies come from the offline responder (no model, no key) and
//! travel the real send path, with delivery ticks by webhook.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::app::App;
use crate::config::{Config, Secret};
use crate::http::demo::DemoInfo;
use crate::http::fake_graph::FakeGraph;

/// The demo's admin login.
pub const DEMO_ADMIN: &str = "admin@demo.example";

/// Creates the demo admin on first start (password kept in DATA_DIR/demo-admin.txt,
/// readable by the owner only) and returns the password.
async fn demo_admin(app: &App, data_dir: &Path) -> anyhow::Result<String> {
    let file = data_dir.join("demo-admin.txt");
    if let Ok(p) = std::fs::read_to_string(&file)
        && app
            .store
            .read(|c| crate::store::users::by_email(c, DEMO_ADMIN))
            .await?
            .is_some()
    {
        return Ok(p.trim().to_string());
    }
    let password = crate::accounts::generate_password();
    crate::accounts::add_user(
        &app.store,
        DEMO_ADMIN,
        crate::domain::auth::Role::Admin,
        &password,
        false,
        "demo",
    )
    .await?;
    crate::private_fs::replace(&file, password.as_bytes()).map_err(|e| crate::Error::writing(&file, e))?;
    Ok(password)
}

/// The simulator's business number id.
pub const DEMO_NUMBER: &str = "100000000000001";

pub fn demo(data_dir: &Path, listen: &str) -> anyhow::Result<ExitCode> {
    crate::private_fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let config_path = data_dir.join("config.toml");
    if !config_path.exists() {
        let text = super::init::render_config(
            &data_dir,
            &crate::config::random_token(),
            &crate::config::random_token(),
            listen,
        );
        crate::private_fs::replace(&config_path, text.as_bytes())
            .map_err(|e| crate::Error::writing(&config_path, e))?;
    }
    let mut config = Config::load(Some(&config_path))?;
    config.server.listen = listen.to_string();
    config.bot.business_name = "Spoke & Sprocket".into();
    config.whatsapp.phone_number_ids = vec![DEMO_NUMBER.into()];
    super::init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = super::serve::bind(&config.server.listen).await?;
        let addr = listener.local_addr()?;
        // The fake Graph API plays Meta: it accepts sends with this token and reports
        // delivery back to our webhook.
        let token = crate::config::random_token();
        let fake = FakeGraph::start(&token).await.context("starting the fake Graph API")?;
        config.whatsapp.graph_base_url = fake.base_url();
        config.whatsapp.access_token = Secret::new(token);
        config.server.public_url = format!("http://{addr}");
        // The order-status tool, backed by the sample orders; the engine fills in the
        // asking customer's number, so each customer sees only their own orders.
        config.llm.tools.push(crate::demo_data::order_tool(format!("http://{addr}/demo/api/orders/{{order_id}}?wa_id={{customer_wa_id}}")));
        let secret = config.whatsapp.app_secret.expose().to_string();
        let app = App::open(config)?;
        crate::demo_data::load_knowledge(&app.knowledge).await?;
        let admin_password = demo_admin(&app, &data_dir).await?;
        let demo = DemoInfo {
            phone_number_id: DEMO_NUMBER.into(),
            addr,
            graph: fake.clone(),
        };
        super::serve::run_app(app, Some(demo), listener, move |running| {
            fake.set_webhook(&format!("http://{}/webhook", running.addr), &secret);
            let base = format!("http://{}", running.addr);
            // Ignore a closed stdout (piped into `head`, a test that stopped reading).
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "\nfrontdesk demo is running (data in {})\n  WhatsApp simulator: {base}/demo\n  agent inbox:        {base}/login  ({DEMO_ADMIN} / {admin_password})\n  webhook:            {base}/webhook  (signed with the app secret in {})\n  fake Graph API:     {}\n  health: {base}/readyz   metrics: {base}/metrics\n  messages:  frontdesk messages list --config {}\nStop with Ctrl-C.",
                data_dir.display(),
                config_path.display(),
                fake.base_url(),
                config_path.display()
            );
            let _ = out.flush();
        })
        .await
    })
}
