//! The UI's two languages. Every string the pages show is a field of [`Text`], so a missing translation does not
//! compile. The language comes from `?lang=` (then remembered in a cookie), else the cookie, else the browser's
//! `Accept-Language`, else English.

use axum::http::{HeaderMap, header};

/// Name of the cookie that remembers the chosen language.
pub(crate) const LANG_COOKIE: &str = "kolokol_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Ru,
}

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub(crate) fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ru") {
            Some(Lang::Ru)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    pub(crate) fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Ru => &RU,
        }
    }
}

/// The language of a request: an explicit `?lang=`, then the cookie, then Accept-Language.
pub(crate) fn choose(query_lang: Option<&str>, headers: &HeaderMap) -> Lang {
    query_lang
        .and_then(Lang::parse)
        .or_else(|| cookie(headers, LANG_COOKIE).and_then(Lang::parse))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(from_accept_language)
        })
        .unwrap_or(Lang::En)
}

/// The supported language the browser prefers most (highest q, earlier on ties).
fn from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in value.split(',').take(32) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::parse) else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// The value of one cookie.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Every string of the UI.
pub(crate) struct Text {
    pub home: &'static str,
    pub search: &'static str,
    pub publish: &'static str,
    pub downloads: &'static str,
    pub node: &'static str,
    pub tagline: &'static str,
    pub newest: &'static str,
    pub no_records: &'static str,
    pub newer: &'static str,
    pub older: &'static str,
    pub search_placeholder: &'static str,
    pub media: &'static str,
    pub any: &'static str,
    pub video: &'static str,
    pub audio: &'static str,
    pub image: &'static str,
    pub text: &'static str,
    pub other: &'static str,
    pub language: &'static str,
    pub tag: &'static str,
    pub period: &'static str,
    pub day: &'static str,
    pub week: &'static str,
    pub month: &'static str,
    pub year: &'static str,
    pub find: &'static str,
    pub no_results: &'static str,
    pub author: &'static str,
    pub published: &'static str,
    pub size: &'static str,
    pub files: &'static str,
    pub tags: &'static str,
    pub magnet: &'static str,
    /// Link to the publication's .torrent file.
    pub torrent_file: &'static str,
    /// "Full copies on known peers".
    pub full_copies: &'static str,
    /// Shown while a publication of this node waits for a replica before it is announced.
    pub not_announced: &'static str,
    pub copy: &'static str,
    pub download: &'static str,
    pub loading_text: &'static str,
    pub no_player: &'static str,
    pub follow: &'static str,
    pub unfollow: &'static str,
    pub block: &'static str,
    pub unblock: &'static str,
    pub following_now: &'static str,
    pub blocked_now: &'static str,
    pub this_is_you: &'static str,
    pub confirm_block: &'static str,
    pub publications: &'static str,
    pub publish_title: &'static str,
    pub choose_files: &'static str,
    pub thumbnail: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub tags_hint: &'static str,
    pub lang_hint: &'static str,
    pub uploading: &'static str,
    pub publishing: &'static str,
    pub failed: &'static str,
    pub metadata_warning: &'static str,
    pub allow_metadata: &'static str,
    pub keep_names: &'static str,
    pub no_transfers: &'static str,
    pub sharing_on: &'static str,
    pub sharing_off: &'static str,
    pub sharing_start: &'static str,
    pub sharing_stop: &'static str,
    pub shared_yes: &'static str,
    pub shared_no: &'static str,
    pub state: &'static str,
    pub peers: &'static str,
    pub speed: &'static str,
    pub network: &'static str,
    pub node_id: &'static str,
    pub author_id: &'static str,
    pub peers_connected: &'static str,
    pub peers_known: &'static str,
    pub dht_nodes: &'static str,
    pub addresses: &'static str,
    pub records: &'static str,
    pub storage_used: &'static str,
    pub storage_free: &'static str,
    pub data_dir: &'static str,
    pub reachable: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub version: &'static str,
    pub address: &'static str,
    pub connected: &'static str,
    pub not_found: &'static str,
    pub error: &'static str,
}

impl Text {
    /// A transfer state word (the node's states are English identifiers).
    pub(crate) fn state_name(&self, state: &str) -> &'static str {
        let ru = std::ptr::eq(self, &RU);
        match (state, ru) {
            ("resolving", false) => "finding",
            ("resolving", true) => "поиск",
            ("checking", false) => "checking",
            ("checking", true) => "проверка",
            ("downloading", false) => "downloading",
            ("downloading", true) => "загрузка",
            ("seeding", false) => "seeding",
            ("seeding", true) => "раздача",
            ("paused", false) => "paused",
            ("paused", true) => "пауза",
            ("failed", false) => "failed",
            ("failed", true) => "ошибка",
            (_, false) => "stopped",
            (_, true) => "остановлено",
        }
    }
}

static EN: Text = Text {
    home: "Home",
    search: "Search",
    publish: "Publish",
    downloads: "Downloads",
    node: "Node",
    tagline: "peer-to-peer publishing",
    newest: "New publications",
    no_records: "No publications yet. Connect to a peer or publish something.",
    newer: "← Newer",
    older: "Older →",
    search_placeholder: "Words in titles, descriptions, tags",
    media: "Type",
    any: "Any",
    video: "Video",
    audio: "Audio",
    image: "Images",
    text: "Text",
    other: "Other",
    language: "Language",
    tag: "Tag",
    period: "Published",
    day: "Last day",
    week: "Last week",
    month: "Last month",
    year: "Last year",
    find: "Find",
    no_results: "Nothing found.",
    author: "Author",
    published: "Published",
    size: "Size",
    files: "Files",
    tags: "Tags",
    magnet: "Magnet link",
    torrent_file: ".torrent file",
    full_copies: "Full copies on known peers",
    not_announced: "Not announced yet: waiting for a peer to hold a full copy.",
    copy: "Copy",
    download: "Download and seed",
    loading_text: "Loading the text…",
    no_player: "This file cannot be shown in the browser.",
    follow: "Follow",
    unfollow: "Unfollow",
    block: "Block",
    unblock: "Unblock",
    following_now: "You follow this author.",
    blocked_now: "Blocked: this author's publications are deleted and refused.",
    this_is_you: "This is you.",
    confirm_block: "Block this author? Their publications will be deleted from this node.",
    publications: "Publications",
    publish_title: "Publish",
    choose_files: "Files",
    thumbnail: "Thumbnail (an image, optional)",
    title: "Title",
    description: "Description",
    tags_hint: "Tags, separated by commas",
    lang_hint: "Language of the publication (e.g. ru, en)",
    uploading: "Uploading…",
    publishing: "Hashing and signing…",
    failed: "Failed",
    metadata_warning: "These files would keep metadata that can identify you (author, software, location). \
                       Nothing was published.",
    allow_metadata: "Publish these files with their metadata",
    keep_names: "Keep the original file names (by default: photo-1.jpg, video.mp4…)",
    no_transfers: "No downloads or seeds yet.",
    sharing_on: "Sharing what you watch is on: this node tells the DHT and its peers that it holds what you download \
        or stream, so anyone watching the swarm can list you as a viewer.",
    sharing_off: "What you watch is private: it is served to peers that ask for it, but this node tells nobody that \
        it holds it. What you publish and what this node mirrors or keeps for others is announced.",
    sharing_start: "Share what I watch",
    sharing_stop: "Stop sharing what I watch",
    shared_yes: "Shared: announced in the DHT and to peers.",
    shared_no: "Private: not announced; served only to peers that ask.",
    state: "State",
    peers: "Peers",
    speed: "Speed",
    network: "Network",
    node_id: "Node id",
    author_id: "Author id",
    peers_connected: "Peers connected",
    peers_known: "Peers known",
    dht_nodes: "DHT nodes",
    addresses: "Addresses",
    records: "Publications in the catalog",
    storage_used: "Storage used",
    storage_free: "Free space",
    data_dir: "Data folder",
    reachable: "Reachable from outside",
    yes: "yes",
    no: "no",
    version: "Version",
    address: "Address",
    connected: "Connected",
    not_found: "Not found",
    error: "Error",
};

static RU: Text = Text {
    home: "Главная",
    search: "Поиск",
    publish: "Опубликовать",
    downloads: "Загрузки",
    node: "Узел",
    tagline: "публикации без серверов",
    newest: "Новые публикации",
    no_records: "Публикаций пока нет. Подключитесь к узлу или опубликуйте что-нибудь.",
    newer: "← Новее",
    older: "Старше →",
    search_placeholder: "Слова из названий, описаний, тегов",
    media: "Тип",
    any: "Любой",
    video: "Видео",
    audio: "Аудио",
    image: "Изображения",
    text: "Текст",
    other: "Другое",
    language: "Язык",
    tag: "Тег",
    period: "Опубликовано",
    day: "За день",
    week: "За неделю",
    month: "За месяц",
    year: "За год",
    find: "Найти",
    no_results: "Ничего не найдено.",
    author: "Автор",
    published: "Опубликовано",
    size: "Размер",
    files: "Файлы",
    tags: "Теги",
    magnet: "Magnet-ссылка",
    torrent_file: "Файл .torrent",
    full_copies: "Полных копий у известных узлов",
    not_announced: "Ещё не объявлено: ждём, пока у другого узла будет полная копия.",
    copy: "Копировать",
    download: "Скачать и раздавать",
    loading_text: "Загрузка текста…",
    no_player: "Этот файл нельзя показать в браузере.",
    follow: "Подписаться",
    unfollow: "Отписаться",
    block: "Заблокировать",
    unblock: "Разблокировать",
    following_now: "Вы подписаны на этого автора.",
    blocked_now: "Заблокирован: публикации автора удалены и не принимаются.",
    this_is_you: "Это вы.",
    confirm_block: "Заблокировать автора? Его публикации будут удалены с этого узла.",
    publications: "Публикации",
    publish_title: "Публикация",
    choose_files: "Файлы",
    thumbnail: "Обложка (изображение, по желанию)",
    title: "Название",
    description: "Описание",
    tags_hint: "Теги через запятую",
    lang_hint: "Язык публикации (например, ru, en)",
    uploading: "Загрузка файла…",
    publishing: "Хеширование и подпись…",
    failed: "Ошибка",
    metadata_warning: "В этих файлах останутся метаданные, по которым вас можно узнать (автор, программа, место). \
                       Ничего не опубликовано.",
    allow_metadata: "Опубликовать эти файлы с метаданными",
    keep_names: "Сохранить исходные имена файлов (по умолчанию: photo-1.jpg, video.mp4…)",
    no_transfers: "Загрузок и раздач пока нет.",
    sharing_on: "Раздача просмотренного включена: узел сообщает DHT и пирам, что у него есть то, что вы скачали или \
        смотрели, и наблюдатель за роем может узнать, что вы это смотрели.",
    sharing_off: "То, что вы смотрите, остаётся частным: узел отдаёт это пирам, которые просят, но никому не сообщает, \
        что оно у него есть. Ваши публикации и то, что узел хранит для других, объявляются.",
    sharing_start: "Раздавать просмотренное",
    sharing_stop: "Не раздавать просмотренное",
    shared_yes: "Раздаётся: объявлено в DHT и пирам.",
    shared_no: "Частное: не объявлено; отдаётся только тем, кто просит.",
    state: "Состояние",
    peers: "Пиры",
    speed: "Скорость",
    network: "Сеть",
    node_id: "Id узла",
    author_id: "Id автора",
    peers_connected: "Подключено узлов",
    peers_known: "Известно узлов",
    dht_nodes: "Узлов DHT",
    addresses: "Адреса",
    records: "Публикаций в каталоге",
    storage_used: "Занято",
    storage_free: "Свободно",
    data_dir: "Папка данных",
    reachable: "Доступен извне",
    yes: "да",
    no: "нет",
    version: "Версия",
    address: "Адрес",
    connected: "Подключён",
    not_found: "Не найдено",
    error: "Ошибка",
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(accept: Option<&str>, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(a).unwrap());
        }
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(
            from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Some(Lang::Ru)
        );
        assert_eq!(from_accept_language("de,en;q=0.5,ru;q=0.4"), Some(Lang::En));
        assert_eq!(from_accept_language("en;q=0.3, ru;q=0.7"), Some(Lang::Ru));
        assert_eq!(from_accept_language("ru;q=0"), None);
        assert_eq!(from_accept_language("de, fr"), None);
        assert_eq!(from_accept_language(""), None);
    }

    #[test]
    fn query_beats_cookie_beats_header() {
        let h = headers(Some("ru"), Some("a=b; kolokol_lang=en"));
        assert_eq!(choose(None, &h), Lang::En);
        assert_eq!(choose(Some("ru"), &h), Lang::Ru);
        assert_eq!(choose(Some("xx"), &headers(Some("ru"), None)), Lang::Ru);
        assert_eq!(choose(None, &headers(None, None)), Lang::En);
    }

    #[test]
    fn state_names_are_translated() {
        assert_eq!(EN.state_name("seeding"), "seeding");
        assert_eq!(RU.state_name("seeding"), "раздача");
        assert_eq!(RU.state_name("anything"), "остановлено");
    }
}
