// The dashboard's stylesheet and script, compiled in (the controller serves them itself: no CDN,
// no files to install, works offline). The script is hand-written and small: live updates over
// server-sent events, and selects that submit their form. Everything else is server-rendered.
#pragma once

namespace nasforge::ui {

extern const char kStyleCss[];
extern const char kScriptJs[];
// "?v=<hash of both>": pages name the assets with it, so a browser never keeps an old copy.
const char* AssetVersion();

}  // namespace nasforge::ui
