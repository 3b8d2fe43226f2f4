//! A captive portal's page, read as data: its forms (action resolved against the page, method,
//! enctype, fields with their types, values, checked and required flags, labels, selects and
//! textareas, submit buttons), the scripts and handlers that would make a browser necessary, a
//! meta refresh, links and a visible-text excerpt; then one form filled with a caller's values and
//! encoded as the request a browser would send.
//!
//! The page is hostile. It is parsed by html5ever (through `scraper`'s arena tree: the WHATWG
//! tree-building algorithm a browser uses, so broken markup, nested forms and forms opened inside
//! tables come out as a browser sees them; no script ever runs, nothing it references is
//! fetched). Every walk over the tree is one linear pass without recursion; the input is cut at
//! [`MAX_PAGE`] bytes, the forms, fields, options, lists and every reported string at their own
//! bounds (what was left out is counted). Values reported are cut; a hidden field's full value is
//! kept for the submission.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use ego_tree::iter::Edge;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink, Node};
use serde::{Deserialize, Serialize};

use crate::agent::failure::Failure;

/// The most bytes of a page parsed (the rest is not looked at; `truncated` says so).
pub const MAX_PAGE: usize = 256 * 1024;
/// The most forms reported per page.
pub const MAX_FORMS: usize = 16;
/// The most fields reported (and submitted) per form.
pub const MAX_FIELDS: usize = 128;
/// The most submit buttons reported per form.
pub const MAX_SUBMITS: usize = 16;
/// The most options reported per select.
const MAX_OPTIONS: usize = 64;
/// Reported attribute values (names, values, actions) are cut at this many characters.
const MAX_VALUE: usize = 512;
/// Labels, titles and button texts are cut at this many characters.
const MAX_LABEL: usize = 200;
/// The visible-text excerpt's length.
const MAX_EXCERPT: usize = 600;
/// Script sources and links reported.
const MAX_LIST: usize = 16;
/// The most tags parsed: a page of nothing but tags gets this many, then it is cut (html5ever's
/// scope checks walk the open-element stack, so a deep nest costs depth × tags).
const MAX_TAGS: usize = 20_000;
/// The most attributes of one tag kept (html5ever looks for duplicates among them per attribute).
const MAX_ATTRS_PER_TAG: usize = 256;

/// One control a form submits (inputs with a name, selects, textareas).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Field {
    /// The name it is submitted under.
    pub name: String,
    /// The input's type (text, hidden, password, email, checkbox, radio, …), or `select` /
    /// `textarea`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its value: what it submits as it stands (for a checkbox or radio: the value it submits
    /// when checked; for a select: the selected option's). Cut at 512 characters for the report;
    /// the full value is what is submitted.
    pub value: String,
    /// Whether `value` was cut in this report.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub value_cut: bool,
    /// Checkboxes and radios: checked as the page sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked: Option<bool>,
    /// The page marks it `required`.
    pub required: bool,
    /// The text of its `<label>` (wrapping it, or `for` its id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Its placeholder text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// A select's option values (at most 64).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The full value, when the report's is cut.
    #[serde(skip)]
    full_value: Option<String>,
    /// The element's id (for `<label for>`).
    #[serde(skip)]
    id: Option<String>,
}

impl Field {
    /// The value as the page gave it, uncut.
    pub fn full_value(&self) -> &str {
        self.full_value.as_deref().unwrap_or(&self.value)
    }
}

/// A submit button (`<button>`, `<input type=submit|image>`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Submit {
    /// Its name (a named button adds name=value to the submission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Its text (a button's content, an input's value or alt).
    pub label: String,
    /// `submit` or `image` (an image button sends NAME.x and NAME.y).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its own `formaction`, resolved, when it overrides the form's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formaction: Option<String>,
    /// Its own `formmethod`, when it overrides the form's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formmethod: Option<String>,
}

/// A form on the page.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Form {
    /// Its index on the page: pass it to network_captive_login as `form`.
    pub index: usize,
    /// Its id attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its name attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it submits: the action resolved against the page's URL (or its `<base href>`); the
    /// page itself when the action is empty.
    pub action: String,
    /// GET or POST.
    pub method: String,
    /// application/x-www-form-urlencoded, multipart/form-data or text/plain.
    pub enctype: String,
    /// The controls it submits, in page order (hidden ones included; disabled and unnamed ones
    /// are never submitted and not listed).
    pub fields: Vec<Field>,
    /// Fields beyond 128, not listed and not submitted.
    #[serde(skip_serializing_if = "is_zero")]
    pub fields_omitted: usize,
    /// Its submit buttons.
    pub submits: Vec<Submit>,
    /// Why network_captive_login would refuse it (its action is not http(s): `javascript:`,
    /// `file:`, `data:`…; method dialog), when it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
    /// It has an `onsubmit` handler or a control with an event handler: a script might change
    /// what a browser sends.
    pub scripted: bool,
    /// The `action` as the page wrote it, when it did not resolve to an http(s) URL.
    #[serde(skip)]
    action_url: Option<url::Url>,
}

/// What the portal page holds.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PortalPage {
    /// The page's URL (after redirects).
    pub url: String,
    /// Its `<title>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its forms, in page order (at most 16).
    pub forms: Vec<Form>,
    /// Forms beyond 16.
    #[serde(skip_serializing_if = "is_zero")]
    pub forms_omitted: usize,
    /// No form network_captive_login can submit, but scripts, event handlers or `javascript:`
    /// links: the portal works in a browser only.
    pub needs_browser: bool,
    /// What on the page needs a browser (when needs_browser), or relies on scripts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub script_signs: Vec<String>,
    /// `<script src>` URLs, resolved (at most 16; never fetched).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<String>,
    /// Inline `<script>` elements.
    pub inline_scripts: usize,
    /// Attributes `on…` (onclick, onload, …) anywhere on the page.
    pub event_handlers: usize,
    /// A `<meta http-equiv=refresh>` target, resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_refresh: Option<String>,
    /// Links (`<a href>`, http and https only, resolved; at most 16).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// The page's visible text, whitespace collapsed (at most 600 characters).
    pub text_excerpt: String,
    /// The text of its `<noscript>` (at most 200 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noscript: Option<String>,
    /// The page was cut before parsing (its size, its tags, or the fetch's bound).
    pub truncated: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `s` cut at `n` characters, and whether it was.
fn cut(s: &str, n: usize) -> (String, bool) {
    match s.char_indices().nth(n) {
        Some((i, _)) => (s[..i].to_string(), true),
        None => (s.to_string(), false),
    }
}

fn cut_str(s: &str, n: usize) -> String {
    cut(s, n).0
}

/// Append `text` to `out` with runs of whitespace as one space, up to `max` characters.
fn push_collapsed(out: &mut String, text: &str, max: usize) {
    let mut len = out.chars().count();
    for word in text.split_whitespace() {
        if len >= max {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
            len += 1;
        }
        for c in word.chars() {
            if len >= max {
                return;
            }
            out.push(c);
            len += 1;
        }
    }
}

/// html5ever's sink, wrapped to keep the parser's form owners (the form element pointer: an
/// input inside `<table><form><tr><td>` belongs to that form without being inside it).
struct OwnerSink {
    inner: HtmlTreeSink,
    owners: RefCell<Vec<(Id, Id)>>,
}

type Id = <HtmlTreeSink as TreeSink>::Handle;

impl TreeSink for OwnerSink {
    type Handle = Id;
    type Output = (Html, Vec<(Id, Id)>);
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> Self::Output {
        (self.inner.finish(), self.owners.into_inner())
    }
    fn parse_error(&self, _msg: std::borrow::Cow<'static, str>) {}
    fn get_document(&self) -> Id {
        self.inner.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a Id) -> Self::ElemName<'a> {
        self.inner.elem_name(target)
    }
    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Id {
        self.inner.create_element(name, attrs, flags)
    }
    fn create_comment(&self, text: StrTendril) -> Id {
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> Id {
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &Id, child: NodeOrText<Id>) {
        self.inner.append(parent, child)
    }
    fn append_based_on_parent_node(&self, element: &Id, prev: &Id, child: NodeOrText<Id>) {
        self.inner.append_based_on_parent_node(element, prev, child)
    }
    fn append_doctype_to_document(&self, name: StrTendril, public: StrTendril, system: StrTendril) {
        self.inner.append_doctype_to_document(name, public, system)
    }
    fn mark_script_already_started(&self, node: &Id) {
        self.inner.mark_script_already_started(node)
    }
    fn pop(&self, node: &Id) {
        self.inner.pop(node)
    }
    fn get_template_contents(&self, target: &Id) -> Id {
        self.inner.get_template_contents(target)
    }
    fn same_node(&self, x: &Id, y: &Id) -> bool {
        self.inner.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode)
    }
    fn append_before_sibling(&self, sibling: &Id, new_node: NodeOrText<Id>) {
        self.inner.append_before_sibling(sibling, new_node)
    }
    fn add_attrs_if_missing(&self, target: &Id, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs)
    }
    fn associate_with_form(&self, target: &Id, form: &Id, _nodes: (&Id, Option<&Id>)) {
        self.owners.borrow_mut().push((*target, *form));
    }
    fn remove_from_parent(&self, target: &Id) {
        self.inner.remove_from_parent(target)
    }
    fn reparent_children(&self, node: &Id, new_parent: &Id) {
        self.inner.reparent_children(node, new_parent)
    }
    fn is_mathml_annotation_xml_integration_point(&self, handle: &Id) -> bool {
        self.inner
            .is_mathml_annotation_xml_integration_point(handle)
    }
    fn allow_declarative_shadow_roots(&self, _intended_parent: &Id) -> bool {
        false
    }
    fn maybe_clone_an_option_into_selectedcontent(&self, option: &Id) {
        self.inner
            .maybe_clone_an_option_into_selectedcontent(option)
    }
}

/// Elements that never hold others (the depth estimate does not count them).
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
];
/// Elements whose end tag pages often leave out: the parser closes them itself, so they do not
/// deepen the tree (and are not counted).
const SELF_CLOSING: &[&str] = &[
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rb",
    "rt", "rp", "rtc", "colgroup", "caption", "html", "head", "body",
];
/// Elements whose content is text up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];
/// The deepest nesting parsed: deeper, the page is cut (browsers stop nesting near 512 too).
const MAX_DEPTH: usize = 512;

/// Bound the parser's work before it starts. html5ever's scope checks walk the stack of open
/// elements, so a page's cost is about its tags × its depth, and its duplicate-attribute check
/// compares each attribute with the tag's earlier ones. A quick scan (quotes, comments and raw
/// text respected) cuts the page at the [`MAX_TAGS`]th tag or where the nesting (estimated:
/// open tags without their end tag, void and self-closing elements not counted) passes
/// [`MAX_DEPTH`], and keeps the first [`MAX_ATTRS_PER_TAG`] attributes of a tag. Returns the
/// text to parse and whether anything was cut.
fn bound(html: &str) -> (std::borrow::Cow<'_, str>, bool) {
    let b = html.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut tags = 0usize;
    let mut i = 0usize;
    // Byte ranges to drop (attributes beyond the bound), in order.
    let mut drop: Vec<(usize, usize)> = Vec::new();
    let mut cut_at = b.len();
    let name_end = |from: usize| {
        let mut j = from;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        j
    };
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"<!--") {
            i = html[i + 4..].find("-->").map_or(b.len(), |p| i + 4 + p + 3);
            continue;
        }
        let close = b.get(i + 1) == Some(&b'/');
        let name_at = if close { i + 2 } else { i + 1 };
        if !b.get(name_at).is_some_and(|c| c.is_ascii_alphabetic()) {
            i += 1;
            continue;
        }
        tags += 1;
        if tags > MAX_TAGS {
            cut_at = i;
            break;
        }
        let ne = name_end(name_at);
        let name = html[name_at..ne].to_ascii_lowercase();
        // The attributes, quotes respected, to the tag's end.
        let mut j = ne;
        let mut attrs = 0usize;
        loop {
            while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b'/') {
                j += 1;
            }
            if j >= b.len() || b[j] == b'>' {
                break;
            }
            let attr_start = j;
            while j < b.len() && !b[j].is_ascii_whitespace() && !matches!(b[j], b'>' | b'/' | b'=')
            {
                j += 1;
            }
            if j == attr_start {
                j += 1; // a lone '=' or quote: step over it
            }
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            if k < b.len() && b[k] == b'=' {
                k += 1;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                if k < b.len() && (b[k] == b'"' || b[k] == b'\'') {
                    let q = b[k];
                    k = b[k + 1..]
                        .iter()
                        .position(|c| *c == q)
                        .map_or(b.len(), |p| k + 1 + p + 1);
                } else {
                    while k < b.len() && !b[k].is_ascii_whitespace() && b[k] != b'>' {
                        k += 1;
                    }
                }
                j = k;
            }
            attrs += 1;
            if attrs == MAX_ATTRS_PER_TAG + 1 {
                // Drop from this attribute to the tag's end ('>' kept).
                let mut e = j;
                let mut q: Option<u8> = None;
                while e < b.len() {
                    match (q, b[e]) {
                        (None, b'"' | b'\'') => q = Some(b[e]),
                        (Some(c), x) if c == x => q = None,
                        (None, b'>') => break,
                        _ => {}
                    }
                    e += 1;
                }
                drop.push((attr_start, e));
                j = e;
                break;
            }
        }
        let end = (j + 1).min(b.len());
        if close {
            if let Some(p) = stack.iter().rposition(|n| *n == name) {
                stack.truncate(p);
            }
        } else if RAW_TEXT.contains(&name.as_str()) {
            // Its text runs to its end tag.
            let needle = format!("</{name}");
            i = find_ci(&b[end..], needle.as_bytes()).map_or(b.len(), |p| end + p);
            continue;
        } else if !VOID.contains(&name.as_str()) && !SELF_CLOSING.contains(&name.as_str()) {
            stack.push(name);
            if stack.len() > MAX_DEPTH {
                cut_at = i;
                break;
            }
        }
        i = end;
    }
    drop.retain(|(s, _)| *s < cut_at);
    let truncated = cut_at < b.len() || !drop.is_empty();
    if drop.is_empty() {
        return (std::borrow::Cow::Borrowed(&html[..cut_at]), truncated);
    }
    let mut out = String::with_capacity(cut_at);
    let mut at = 0;
    for (s, e) in drop {
        out.push_str(&html[at..s]);
        at = e.min(cut_at);
    }
    out.push_str(&html[at..cut_at]);
    (std::borrow::Cow::Owned(out), truncated)
}

/// Does `s` start with `prefix` (ASCII), case ignored? (Bytes: a hostile string may put a
/// multi-byte character where a `str` slice would split it.)
fn starts_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The first place of `needle` (lowercase ASCII) in `hay`, ASCII case ignored.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// One form while the page is walked.
struct FormBuild {
    form: Form,
}

/// Where a label's text goes when it closes.
struct LabelBuild {
    text: String,
    target: Option<String>,
    /// (form index, field index) of the fields inside it.
    inside: Vec<(usize, usize)>,
}

/// A select or textarea being read.
enum Pending {
    Select {
        at: (usize, usize),
        selected: bool,
        first: Option<String>,
    },
    Option {
        value: Option<String>,
        text: String,
        selected: bool,
    },
    Textarea {
        at: (usize, usize),
        text: String,
    },
    Button {
        at: (usize, usize),
        text: String,
    },
}

/// Is `el` an HTML element named `name`?
fn is_html(el: &scraper::node::Element, name: &str) -> bool {
    &*el.name.ns == "http://www.w3.org/1999/xhtml" && el.name() == name
}

/// Parse a portal page fetched from `page_url`. `fetch_cut` says the fetch itself stopped at its
/// bound.
pub fn parse(html: &str, page_url: &url::Url, fetch_cut: bool) -> PortalPage {
    let (mut html, mut truncated) = (html, fetch_cut);
    if html.len() > MAX_PAGE {
        let mut end = MAX_PAGE;
        while !html.is_char_boundary(end) {
            end -= 1;
        }
        html = &html[..end];
        truncated = true;
    }
    let (text, cut_tags) = bound(html);
    truncated |= cut_tags;
    let sink = OwnerSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        owners: RefCell::new(Vec::new()),
    };
    let (doc, owners) = html5ever::driver::parse_document(sink, Default::default()).one(&*text);
    walk(&doc, owners, page_url, truncated)
}

fn walk(doc: &Html, owners: Vec<(Id, Id)>, page_url: &url::Url, truncated: bool) -> PortalPage {
    let owner: HashMap<Id, Id> = owners.into_iter().collect();
    // First: <base href>, and every form's node with its index (a control's `form=ID` may name
    // a form further down).
    let mut base = page_url.clone();
    let mut base_seen = false;
    let mut form_index: HashMap<Id, usize> = HashMap::new();
    let mut form_by_id: HashMap<String, Id> = HashMap::new();
    let mut forms: Vec<FormBuild> = Vec::new();
    let mut forms_omitted = 0usize;
    let mut template_depth = 0usize;
    for edge in doc.tree.root().traverse() {
        let (node, open) = match edge {
            Edge::Open(n) => (n, true),
            Edge::Close(n) => (n, false),
        };
        let Node::Element(el) = node.value() else {
            continue;
        };
        if is_html(el, "template") {
            if open {
                template_depth += 1;
            } else {
                template_depth -= 1;
            }
            continue;
        }
        if !open || template_depth > 0 {
            continue;
        }
        if is_html(el, "base") && !base_seen {
            base_seen = true;
            if let Some(b) = el.attr("href").and_then(|h| page_url.join(h.trim()).ok())
                && matches!(b.scheme(), "http" | "https")
            {
                base = b;
            }
        }
        if is_html(el, "form") {
            if forms.len() >= MAX_FORMS {
                forms_omitted += 1;
                continue;
            }
            let index = forms.len();
            form_index.insert(node.id(), index);
            if let Some(id) = el.attr("id") {
                form_by_id.entry(id.to_string()).or_insert(node.id());
            }
            forms.push(FormBuild {
                form: Form {
                    index,
                    id: el.attr("id").map(|s| cut_str(s, MAX_VALUE)),
                    name: el.attr("name").map(|s| cut_str(s, MAX_VALUE)),
                    action: String::new(),
                    method: String::new(),
                    enctype: String::new(),
                    fields: Vec::new(),
                    fields_omitted: 0,
                    submits: Vec::new(),
                    unusable: None,
                    scripted: el.attr("onsubmit").is_some(),
                    action_url: None,
                },
            });
            // The action and method, resolved against the base known at this point of the page
            // (a <base> comes in <head>, before any form).
            let f = &mut forms[index].form;
            let (url, unusable) = resolve_action(el.attr("action"), &base, page_url);
            f.action = cut_str(
                url.as_ref()
                    .map_or(el.attr("action").unwrap_or(""), |u| u.as_str()),
                MAX_VALUE,
            );
            f.action_url = url;
            f.unusable = unusable;
            let method = el
                .attr("method")
                .unwrap_or("get")
                .trim()
                .to_ascii_lowercase();
            f.method = match method.as_str() {
                "post" => "POST".into(),
                "dialog" => {
                    f.unusable.get_or_insert_with(|| {
                        "method dialog closes a dialog in the page; it submits nothing".into()
                    });
                    "DIALOG".into()
                }
                _ => "GET".into(),
            };
            f.enctype = enctype(el.attr("enctype"));
        }
    }

    let mut page = PortalPage {
        url: cut_str(page_url.as_str(), 2048),
        title: None,
        forms: Vec::new(),
        forms_omitted,
        needs_browser: false,
        script_signs: Vec::new(),
        scripts: Vec::new(),
        inline_scripts: 0,
        event_handlers: 0,
        meta_refresh: None,
        links: Vec::new(),
        text_excerpt: String::new(),
        noscript: None,
        truncated,
    };
    let mut js_links = 0usize;
    let mut scripts_total = 0usize;
    // Elements whose text is not visible: script, style, template, noscript, title, head.
    let mut hidden_depth = 0usize;
    let mut title_open = false;
    let mut title = String::new();
    let mut noscript_open = 0usize;
    let mut noscript = String::new();
    let mut form_stack: Vec<Id> = Vec::new();
    let mut labels: Vec<LabelBuild> = Vec::new();
    let mut label_for: HashMap<String, String> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    template_depth = 0;

    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Text(t) => {
                    if template_depth > 0 {
                        continue;
                    }
                    if title_open {
                        push_collapsed(&mut title, &t.text, MAX_LABEL);
                    }
                    if noscript_open > 0 {
                        push_collapsed(&mut noscript, &t.text, MAX_LABEL);
                    }
                    if hidden_depth == 0 {
                        push_collapsed(&mut page.text_excerpt, &t.text, MAX_EXCERPT);
                        if let Some(l) = labels.last_mut() {
                            push_collapsed(&mut l.text, &t.text, MAX_LABEL);
                        }
                    }
                    match pending.last_mut() {
                        Some(Pending::Option { text, .. })
                        | Some(Pending::Textarea { text, .. })
                        | Some(Pending::Button { text, .. })
                            // A textarea's text is its value: keep it whole up to a bound.
                            if text.len() < 64 * 1024 =>
                        {
                            text.push_str(&t.text);
                        }
                        _ => {}
                    }
                }
                Node::Element(el) => {
                    let handlers = el.attrs().filter(|(k, _)| k.starts_with("on")).count();
                    page.event_handlers += handlers;
                    if is_html(el, "template") {
                        template_depth += 1;
                    }
                    if template_depth > 0 {
                        continue;
                    }
                    let name = el.name();
                    let html_ns = &*el.name.ns == "http://www.w3.org/1999/xhtml";
                    if matches!(name, "script" | "style" | "noscript" | "head" | "title") {
                        hidden_depth += 1;
                    }
                    if !html_ns {
                        if name == "script" {
                            scripts_total += 1;
                            page.inline_scripts += 1;
                        }
                        continue;
                    }
                    match name {
                        "title" => title_open = page.title.is_none(),
                        "noscript" => noscript_open += 1,
                        "script" => {
                            scripts_total += 1;
                            match el.attr("src") {
                                Some(src) => {
                                    if page.scripts.len() < MAX_LIST {
                                        let s = base
                                            .join(src.trim())
                                            .map(|u| u.to_string())
                                            .unwrap_or_else(|_| src.to_string());
                                        page.scripts.push(cut_str(&s, MAX_VALUE));
                                    }
                                }
                                None => page.inline_scripts += 1,
                            }
                        }
                        "meta" => {
                            let refresh = el
                                .attr("http-equiv")
                                .is_some_and(|h| h.trim().eq_ignore_ascii_case("refresh"));
                            if refresh && page.meta_refresh.is_none() {
                                page.meta_refresh =
                                    el.attr("content").map(|c| meta_refresh(c, &base));
                            }
                        }
                        "a" | "area" => {
                            if let Some(h) = el.attr("href") {
                                let h = h.trim();
                                if starts_ci(h, "javascript:") {
                                    js_links += 1;
                                } else if let Ok(u) = base.join(h)
                                    && matches!(u.scheme(), "http" | "https")
                                    && page.links.len() < MAX_LIST
                                {
                                    page.links.push(cut_str(u.as_str(), MAX_VALUE));
                                }
                            }
                        }
                        "form" => form_stack.push(node.id()),
                        "label" => labels.push(LabelBuild {
                            text: String::new(),
                            target: el.attr("for").map(str::to_string),
                            inside: Vec::new(),
                        }),
                        "input" | "select" | "textarea" | "button" => {
                            let Some(fi) =
                                owner_of(el, node.id(), &owner, &form_stack, &form_by_id)
                                    .and_then(|f| form_index.get(&f).copied())
                            else {
                                continue;
                            };
                            let f = &mut forms[fi].form;
                            if handlers > 0 {
                                f.scripted = true;
                            }
                            if el.attr("disabled").is_some() {
                                continue;
                            }
                            match control(f, el, name, &base) {
                                Added::Field(k) => {
                                    let at = (fi, k);
                                    if let Some(l) = labels.last_mut() {
                                        l.inside.push(at);
                                    }
                                    match name {
                                        "select" => pending.push(Pending::Select {
                                            at,
                                            selected: false,
                                            first: None,
                                        }),
                                        "textarea" => pending.push(Pending::Textarea {
                                            at,
                                            text: String::new(),
                                        }),
                                        _ => {}
                                    }
                                }
                                Added::Submit(k) if name == "button" => {
                                    pending.push(Pending::Button {
                                        at: (fi, k),
                                        text: String::new(),
                                    });
                                }
                                Added::Submit(_) | Added::Nothing => {}
                            }
                        }
                        "option" => {
                            if matches!(pending.last(), Some(Pending::Select { .. })) {
                                pending.push(Pending::Option {
                                    value: el.attr("value").map(str::to_string),
                                    text: String::new(),
                                    selected: el.attr("selected").is_some(),
                                });
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                let Node::Element(el) = node.value() else {
                    continue;
                };
                if is_html(el, "template") {
                    template_depth -= 1;
                    continue;
                }
                if template_depth > 0 {
                    continue;
                }
                let name = el.name();
                let html_ns = &*el.name.ns == "http://www.w3.org/1999/xhtml";
                if matches!(name, "script" | "style" | "noscript" | "head" | "title") {
                    hidden_depth = hidden_depth.saturating_sub(1);
                }
                if !html_ns {
                    continue;
                }
                match name {
                    "title" if title_open => {
                        title_open = false;
                        page.title = Some(title.clone());
                    }
                    "noscript" => noscript_open = noscript_open.saturating_sub(1),
                    "form" => {
                        form_stack.pop();
                    }
                    "label" => {
                        if let Some(l) = labels.pop() {
                            for (fi, k) in &l.inside {
                                let fld = &mut forms[*fi].form.fields[*k];
                                fld.label.get_or_insert_with(|| l.text.clone());
                            }
                            if let Some(t) = l.target {
                                label_for.entry(t).or_insert(l.text);
                            }
                        }
                    }
                    "option" => {
                        if let Some(Pending::Option {
                            value,
                            text,
                            selected,
                        }) = pending.last()
                        {
                            let mut v = value.clone().unwrap_or_else(|| {
                                let mut s = String::new();
                                push_collapsed(&mut s, text, 4096);
                                s
                            });
                            let sel = *selected;
                            pending.pop();
                            if let Some(Pending::Select {
                                at,
                                selected,
                                first,
                            }) = pending.last_mut()
                            {
                                let fld = &mut forms[at.0].form.fields[at.1];
                                if fld.options.len() < MAX_OPTIONS {
                                    fld.options.push(cut_str(&v, MAX_VALUE));
                                }
                                if first.is_none() {
                                    *first = Some(v.clone());
                                }
                                if sel && !*selected {
                                    *selected = true;
                                    set_value(fld, std::mem::take(&mut v));
                                }
                            }
                        }
                    }
                    "select" => {
                        if let Some(Pending::Select {
                            at,
                            selected,
                            first,
                        }) = pending.last()
                        {
                            if !selected {
                                let v = first.clone().unwrap_or_default();
                                set_value(&mut forms[at.0].form.fields[at.1], v);
                            }
                            pending.pop();
                        }
                    }
                    "textarea" => {
                        if let Some(Pending::Textarea { at, text }) = pending.last() {
                            // The parser drops one leading newline; the value is the rest.
                            let v = text.clone();
                            set_value(&mut forms[at.0].form.fields[at.1], v);
                            pending.pop();
                        }
                    }
                    "button" => {
                        if let Some(Pending::Button { at, text }) = pending.last() {
                            let mut s = String::new();
                            push_collapsed(&mut s, text, MAX_LABEL);
                            let b = &mut forms[at.0].form.submits[at.1];
                            if b.label.is_empty() {
                                b.label = s;
                            }
                            pending.pop();
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for fb in &mut forms {
        for fld in &mut fb.form.fields {
            if fld.label.is_none()
                && let Some(t) = fld.id.as_ref().and_then(|id| label_for.get(id))
            {
                fld.label = Some(t.clone());
            }
            if fld.label.as_deref() == Some("") {
                fld.label = None;
            }
        }
    }
    if !noscript.is_empty() {
        page.noscript = Some(noscript);
    }
    page.forms = forms.into_iter().map(|f| f.form).collect();
    let usable = page.forms.iter().any(|f| f.unusable.is_none());
    let mut signs = Vec::new();
    if scripts_total > 0 {
        signs.push(format!(
            "{scripts_total} script(s) ({} with src, {} inline)",
            scripts_total - page.inline_scripts,
            page.inline_scripts
        ));
    }
    if page.event_handlers > 0 {
        signs.push(format!(
            "{} event handler attribute(s) (onclick, …)",
            page.event_handlers
        ));
    }
    if js_links > 0 {
        signs.push(format!("{js_links} javascript: link(s)"));
    }
    let js_forms = page
        .forms
        .iter()
        .filter(|f| {
            f.unusable
                .as_deref()
                .is_some_and(|u| u.contains("javascript"))
        })
        .count();
    if js_forms > 0 {
        signs.push(format!("{js_forms} form(s) with a javascript: action"));
    }
    if page.noscript.is_some() {
        signs.push("a <noscript> notice".into());
    }
    page.needs_browser = !usable && !signs.is_empty();
    page.script_signs = signs;
    page
}

/// The form that owns a control: its `form=ID` attribute, else the parser's form pointer, else
/// the form it sits in.
fn owner_of(
    el: &scraper::node::Element,
    id: Id,
    owner: &HashMap<Id, Id>,
    stack: &[Id],
    by_id: &HashMap<String, Id>,
) -> Option<Id> {
    if let Some(f) = el.attr("form") {
        return by_id.get(f).copied();
    }
    owner.get(&id).copied().or_else(|| stack.last().copied())
}

fn set_value(f: &mut Field, v: String) {
    let (shown, was_cut) = cut(&v, MAX_VALUE);
    f.value = shown;
    f.value_cut = was_cut;
    f.full_value = was_cut.then_some(v);
}

/// What [`control`] added to a form.
enum Added {
    /// A field, at this index.
    Field(usize),
    /// A submit button, at this index.
    Submit(usize),
    /// Nothing (unnamed, not submitted, or beyond the bounds).
    Nothing,
}

/// Add one control to `f`: a field or a submit button.
fn control(f: &mut Form, el: &scraper::node::Element, tag: &str, base: &url::Url) -> Added {
    let kind = match tag {
        "input" => el
            .attr("type")
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "text".into()),
        "button" => {
            let t = el.attr("type").map(|t| t.trim().to_ascii_lowercase());
            match t.as_deref() {
                None | Some("submit") | Some("") => "submit".into(),
                Some(_) => return Added::Nothing,
            }
        }
        other => other.to_string(),
    };
    match kind.as_str() {
        "submit" | "image" => {
            if f.submits.len() < MAX_SUBMITS {
                let label = match tag {
                    "button" => String::new(),
                    _ => cut_str(
                        el.attr("value")
                            .or(el.attr("alt"))
                            .unwrap_or(if kind == "image" { "" } else { "Submit" }),
                        MAX_LABEL,
                    ),
                };
                f.submits.push(Submit {
                    name: el
                        .attr("name")
                        .filter(|n| !n.is_empty())
                        .map(|s| cut_str(s, MAX_VALUE)),
                    value: el.attr("value").map(|s| cut_str(s, MAX_VALUE)),
                    label,
                    kind,
                    formaction: el
                        .attr("formaction")
                        .and_then(|a| base.join(a.trim()).ok())
                        .map(|u| cut_str(u.as_str(), MAX_VALUE)),
                    formmethod: el
                        .attr("formmethod")
                        .map(|m| m.trim().to_ascii_uppercase())
                        .filter(|m| m == "GET" || m == "POST"),
                });
                return Added::Submit(f.submits.len() - 1);
            }
            Added::Nothing
        }
        "button" | "reset" => Added::Nothing,
        _ => {
            let Some(name) = el.attr("name").filter(|n| !n.is_empty()) else {
                return Added::Nothing;
            };
            if f.fields.len() >= MAX_FIELDS {
                f.fields_omitted += 1;
                return Added::Nothing;
            }
            let (name, _) = cut(name, MAX_VALUE);
            let checkable = kind == "checkbox" || kind == "radio";
            let value = match (tag, checkable) {
                ("input", true) => el.attr("value").unwrap_or("on").to_string(),
                ("input", false) => el.attr("value").unwrap_or("").to_string(),
                _ => String::new(),
            };
            let mut field = Field {
                name,
                kind,
                value: String::new(),
                value_cut: false,
                checked: checkable.then(|| el.attr("checked").is_some()),
                required: el.attr("required").is_some(),
                label: None,
                placeholder: el.attr("placeholder").map(|p| cut_str(p, MAX_LABEL)),
                options: Vec::new(),
                full_value: None,
                id: el.attr("id").map(str::to_string),
            };
            set_value(&mut field, value);
            f.fields.push(field);
            Added::Field(f.fields.len() - 1)
        }
    }
}

fn enctype(e: Option<&str>) -> String {
    match e.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("multipart/form-data") => "multipart/form-data".into(),
        Some("text/plain") => "text/plain".into(),
        _ => "application/x-www-form-urlencoded".into(),
    }
}

/// A form's action resolved; None with the reason when it is not an http(s) URL.
fn resolve_action(
    action: Option<&str>,
    base: &url::Url,
    page: &url::Url,
) -> (Option<url::Url>, Option<String>) {
    let a = action.map(str::trim).unwrap_or("");
    let resolved = if a.is_empty() {
        Ok(page.clone())
    } else {
        base.join(a)
    };
    match resolved {
        Ok(u) if matches!(u.scheme(), "http" | "https") => (Some(u), None),
        Ok(u) => (
            None,
            Some(format!(
                "its action is a {}: URL, not http(s){}",
                u.scheme(),
                if u.scheme() == "javascript" {
                    " (a script submits it: it needs a browser)"
                } else {
                    ""
                }
            )),
        ),
        Err(e) => (None, Some(format!("its action is not a URL ({e})"))),
    }
}

/// The URL of a meta refresh's `content` ("5; url=/next"), resolved; the content itself when it
/// names no URL.
fn meta_refresh(content: &str, base: &url::Url) -> String {
    let c = content.trim();
    let after = c
        .split_once([';', ','])
        .map(|(_, rest)| rest.trim())
        .unwrap_or("");
    let target = if starts_ci(after, "url=") {
        &after[4..]
    } else {
        after
    }
    .trim_matches(|c| c == '\'' || c == '"' || c == ' ');
    if target.is_empty() {
        return cut_str(c, MAX_VALUE);
    }
    base.join(target)
        .map(|u| cut_str(u.as_str(), MAX_VALUE))
        .unwrap_or_else(|_| cut_str(target, MAX_VALUE))
}

/// A value a caller sets: text, or true/false for a checkbox (true: checked, so it sends its
/// value; false: unchecked, so it sends nothing).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FieldValue {
    /// Checked (true) or not (false): checkboxes, or a radio group of one.
    Flag(bool),
    /// A text value (text fields, hidden fields, selects, a radio's value).
    Text(String),
}

/// The request a browser would send for a form.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Where to (a GET form's fields in its query).
    pub url: url::Url,
    /// GET or POST.
    pub method: http::Method,
    /// The body of a POST.
    pub body: Option<bytes::Bytes>,
    /// Its content type.
    pub content_type: Option<String>,
    /// The names submitted, in order (values are not reported: they may be access codes).
    pub names: Vec<String>,
    /// The names whose values the caller set.
    pub from_caller: Vec<String>,
    /// The submit button used, by its label.
    pub submit: Option<String>,
    /// Warnings: required fields left empty, values not among a select's options.
    pub notes: Vec<String>,
}

/// The largest submission body.
pub const MAX_SUBMISSION: usize = 64 * 1024;

/// Fill `form` as a browser would (its fields as the page set them, then the caller's values)
/// and encode it; `submit` picks a submit button (default: the first). Refused, with nothing
/// sent: a form that cannot be submitted, a field name the form does not have, a flag for a text
/// field, a body beyond [`MAX_SUBMISSION`].
pub fn fill(
    form: &Form,
    given: &BTreeMap<String, FieldValue>,
    submit: Option<usize>,
) -> Result<Submission, Failure> {
    if let Some(why) = &form.unusable {
        return Err(Failure::invalid(format!(
            "form {} cannot be submitted: {why}; nothing was sent",
            form.index
        )));
    }
    let Some(action) = form.action_url.clone() else {
        return Err(Failure::invalid(format!(
            "form {} has no http(s) action; nothing was sent",
            form.index
        )));
    };
    let known: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
    let unknown: Vec<&String> = given
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        let mut names = known.clone();
        names.dedup();
        return Err(Failure::invalid(format!(
            "form {} has no field named {}; its fields are: {}",
            form.index,
            unknown
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let button = match submit {
        Some(i) if i >= form.submits.len() => {
            return Err(Failure::invalid(format!(
                "submit {i} is out of range: form {} has {} submit button(s)",
                form.index,
                form.submits.len()
            )));
        }
        Some(i) => form.submits.get(i),
        None => form.submits.first(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut notes = Vec::new();
    let mut radio_done: Vec<&str> = Vec::new();
    for f in &form.fields {
        let set = given.get(&f.name);
        match (f.kind.as_str(), set) {
            ("checkbox", None) => {
                if f.checked == Some(true) {
                    pairs.push((f.name.clone(), f.full_value().to_string()));
                }
            }
            ("checkbox", Some(FieldValue::Flag(true))) => {
                pairs.push((f.name.clone(), f.full_value().to_string()))
            }
            ("checkbox", Some(FieldValue::Flag(false))) => {}
            ("checkbox", Some(FieldValue::Text(s))) => pairs.push((f.name.clone(), s.clone())),
            ("radio", v) => {
                if radio_done.contains(&f.name.as_str()) {
                    continue;
                }
                let group: Vec<&Field> = form.fields.iter().filter(|g| g.name == f.name).collect();
                let chosen = match v {
                    None => group
                        .iter()
                        .find(|g| g.checked == Some(true))
                        .map(|g| g.full_value().to_string()),
                    Some(FieldValue::Text(s)) => {
                        if !group.iter().any(|g| g.full_value() == s) {
                            notes.push(format!(
                                "{} has no radio with the value {s:?}; sent as given",
                                f.name
                            ));
                        }
                        Some(s.clone())
                    }
                    Some(FieldValue::Flag(true)) if group.len() == 1 => {
                        Some(f.full_value().to_string())
                    }
                    Some(FieldValue::Flag(true)) => {
                        return Err(Failure::invalid(format!(
                            "{} is a group of {} radios: give the value to choose ({})",
                            f.name,
                            group.len(),
                            group
                                .iter()
                                .map(|g| g.value.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    Some(FieldValue::Flag(false)) => None,
                };
                radio_done.push(&f.name);
                if let Some(v) = chosen {
                    pairs.push((f.name.clone(), v));
                }
            }
            (kind, Some(FieldValue::Flag(_))) => {
                return Err(Failure::invalid(format!(
                    "{} is a {kind} field: give its value as a string (true/false are for checkboxes)",
                    f.name
                )));
            }
            (_, Some(FieldValue::Text(s))) => {
                if f.kind == "select"
                    && !f.options.is_empty()
                    && f.options.len() < MAX_OPTIONS
                    && !f.options.contains(s)
                {
                    notes.push(format!(
                        "{} has no option {s:?} (options: {}); sent as given",
                        f.name,
                        f.options.join(", ")
                    ));
                }
                pairs.push((f.name.clone(), s.clone()))
            }
            (_, None) => pairs.push((f.name.clone(), f.full_value().to_string())),
        }
    }
    for f in &form.fields {
        let sent = pairs.iter().any(|(n, v)| n == &f.name && !v.is_empty());
        if f.required && !sent {
            notes.push(format!(
                "{} is required by the page but {} (a browser would not submit; sent anyway)",
                f.name,
                if f.kind == "checkbox" || f.kind == "radio" {
                    "not checked"
                } else {
                    "empty"
                }
            ));
        }
    }
    let mut url = action;
    let mut method = if form.method == "POST" {
        http::Method::POST
    } else {
        http::Method::GET
    };
    if let Some(b) = button {
        if let Some(name) = &b.name {
            if b.kind == "image" {
                pairs.push((format!("{name}.x"), "0".into()));
                pairs.push((format!("{name}.y"), "0".into()));
            } else {
                pairs.push((name.clone(), b.value.clone().unwrap_or_default()));
            }
        }
        if let Some(fa) = &b.formaction {
            match url::Url::parse(fa) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => url = u,
                _ => {
                    return Err(Failure::invalid(format!(
                        "the submit button's formaction {fa:?} is not an http(s) URL; nothing was sent"
                    )));
                }
            }
        }
        match b.formmethod.as_deref() {
            Some("POST") => method = http::Method::POST,
            Some("GET") => method = http::Method::GET,
            _ => {}
        }
    }
    notes.dedup();
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
    let (body, content_type) = if method == http::Method::GET {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        url.set_query(if q.is_empty() { None } else { Some(&q) });
        (None, None)
    } else {
        match form.enctype.as_str() {
            "multipart/form-data" => {
                let boundary = format!("----wifi-isolate-{:016x}", rand_u64());
                let mut b = String::new();
                for (n, v) in &pairs {
                    b.push_str(&format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{v}\r\n",
                        n.replace('"', "%22").replace(['\r', '\n'], " ")
                    ));
                }
                b.push_str(&format!("--{boundary}--\r\n"));
                (
                    Some(b),
                    Some(format!("multipart/form-data; boundary={boundary}")),
                )
            }
            "text/plain" => {
                let b: String = pairs.iter().map(|(n, v)| format!("{n}={v}\r\n")).collect();
                (Some(b), Some("text/plain".to_string()))
            }
            _ => (
                Some(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&pairs)
                        .finish(),
                ),
                Some("application/x-www-form-urlencoded".to_string()),
            ),
        }
    };
    let len = body.as_ref().map_or(url.as_str().len(), |b| b.len());
    if len > MAX_SUBMISSION {
        return Err(Failure::invalid(format!(
            "the filled form is {len} bytes, more than {MAX_SUBMISSION}; nothing was sent"
        )));
    }
    let mut from_caller: Vec<String> = given.keys().cloned().collect();
    from_caller.sort();
    Ok(Submission {
        url,
        method,
        body: body.map(bytes::Bytes::from),
        content_type,
        names,
        from_caller,
        submit: button.map(|b| b.label.clone()),
        notes,
    })
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests;
