//! The box editor: a current frame, aligned, with the digit boxes and the
//! reference marks to drag and resize; each box's crop and the model's
//! reading as you move it; "propose" (as `meter roi --auto`); "save"
//! (validated, the previous config kept as a backup, the meter's table
//! rewritten with comments and other meters kept).

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use meter_service::config::{MeterConfig, ResolvedConfig};
use meter_service::{overlay, registry};
use meter_vision::{
    aligned_frame, extract_digits, propose_digits, Alignment, Regions, Resample, StopSignal,
};
use serde::Deserialize;

use crate::app::App;
use crate::html::{esc, seg};
use crate::http::{Req, Resp};
use crate::pages::layout;

type Answer = Result<Resp, Resp>;

/// How long reading a fresh frame for the editor may take.
const FRAME_DEADLINE: Duration = Duration::from_secs(20);

/// The frame the editor works on.
pub struct EditorFrame {
    frame: RgbImage,
    alignment: Alignment,
    /// The aligned frame as JPEG (what the page shows).
    jpeg: Vec<u8>,
    size: (u32, u32),
    /// Whether the marks were found (else the config's rotation alone).
    aligned: bool,
}

fn internal(e: anyhow::Error) -> Resp {
    Resp::error(500, &format!("{e:#}"))
}

/// The meter's last frame (inside `meter run`) or a fresh one from its
/// source, aligned; kept until `fresh` is asked for or the config changes.
fn frame(app: &App, m: &MeterConfig, fresh: bool) -> Result<Arc<EditorFrame>, Resp> {
    if !fresh {
        if let Some(f) = app
            .editor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&m.name)
        {
            return Ok(f.clone());
        }
    }
    let cfg = app.cfg();
    let live = app.live_of(&m.name);
    let f = match live.last.filter(|ev| !fresh && !ev.jpeg.is_empty()) {
        Some(ev) => {
            let image =
                meter_vision::decode_jpeg(&ev.jpeg, &ev.origin).map_err(|e| internal(e.into()))?;
            make(image, Some(ev.alignment.clone()), m, &cfg)?
        }
        None => {
            let stop = StopSignal::with_deadline(Instant::now() + FRAME_DEADLINE);
            let options = meter_service::open::source_options(&cfg, &stop);
            let frame = m.source.read_once(&options).map_err(|e| {
                Resp::error(
                    502,
                    &format!("meter {}: no frame from its source: {e}", m.name),
                )
            })?;
            make(frame.image, None, m, &cfg)?
        }
    };
    let f = Arc::new(f);
    app.editor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(m.name.clone(), f.clone());
    Ok(f)
}

fn make(
    image: RgbImage,
    alignment: Option<Alignment>,
    m: &MeterConfig,
    cfg: &ResolvedConfig,
) -> Result<EditorFrame, Resp> {
    let aligner = m
        .geometry
        .aligner(&cfg.base_dir)
        .map_err(|e| internal(e.into()))?;
    let (alignment, aligned) = match alignment {
        Some(a) => (a, true),
        None => match aligner.align(&image) {
            Ok(a) => (a, true),
            Err(_) => {
                // The config's rotation alone: the boxes can still be set.
                let (initial, size) = aligner.initial(image.dimensions());
                (
                    Alignment {
                        transform: initial,
                        aligned_size: size,
                        initial,
                        marks: Vec::new(),
                    },
                    false,
                )
            }
        },
    };
    let a = aligned_frame(&image, &alignment);
    let jpeg = overlay::jpeg(&a).map_err(internal)?;
    Ok(EditorFrame {
        size: a.dimensions(),
        frame: image,
        alignment,
        jpeg,
        aligned,
    })
}

/// The counter's digits (as many as its configured boxes).
fn digit_count(m: &MeterConfig) -> usize {
    m.geometry.regions().map_or(0, |r| r.boxes().len())
}

/// `/api/meters/{name}/editor.jpg`: the aligned frame, nothing drawn.
pub fn frame_jpeg(app: &App, m: &MeterConfig) -> Answer {
    Ok(Resp::ok("image/jpeg", frame(app, m, false)?.jpeg.clone()))
}

fn parse_box(s: &str) -> Option<[u32; 4]> {
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [x, y, w, h] if w > 0 && h > 0 => Some([x, y, w, h]),
        _ => None,
    }
}

fn check_boxes(boxes: &[[u32; 4]], size: (u32, u32)) -> Result<(), Resp> {
    for (k, b) in boxes.iter().enumerate() {
        let inside = b[2] > 0
            && b[3] > 0
            && u64::from(b[0]) + u64::from(b[2]) <= u64::from(size.0)
            && u64::from(b[1]) + u64::from(b[3]) <= u64::from(size.1);
        if !inside {
            return Err(Resp::error(
                400,
                &format!(
                    "box {} {b:?} is empty or outside the {}x{} aligned frame",
                    k + 1,
                    size.0,
                    size.1
                ),
            ));
        }
    }
    Ok(())
}

fn crops(
    f: &EditorFrame,
    boxes: &[[u32; 4]],
    size: Option<(u32, u32)>,
) -> Result<Vec<RgbImage>, Resp> {
    let mut out = Vec::with_capacity(boxes.len());
    for b in boxes {
        let one = Regions::Boxes(vec![*b]);
        let c = extract_digits(
            &f.frame,
            &f.alignment,
            &one,
            size.unwrap_or((b[2], b[3])),
            Resample::Area,
        )
        .map_err(|e| internal(e.into()))?;
        out.extend(c);
    }
    Ok(out)
}

/// `/api/meters/{name}/crop.png?box=x,y,w,h`: one box's crop.
pub fn crop(app: &App, m: &MeterConfig, req: &Req) -> Answer {
    let b = req
        .query
        .get("box")
        .and_then(|b| parse_box(b))
        .ok_or_else(|| Resp::error(400, "box=x,y,w,h with w and h above 0 expected"))?;
    let f = frame(app, m, false)?;
    check_boxes(&[b], f.size)?;
    let c = crops(&f, &[b], None)?;
    let png = meter_service::files::png_bytes(&c[0]).map_err(internal)?;
    Ok(Resp::ok("image/png", png))
}

#[derive(Deserialize)]
struct Boxes {
    digits: Vec<[u32; 4]>,
    #[serde(default)]
    marks: Vec<[u32; 2]>,
    rotate: Option<f64>,
}

/// `POST /api/meters/{name}/preview {"digits": [[x,y,w,h], ...]}`: the
/// model's reading of each box.
pub fn preview(app: &App, m: &MeterConfig, req: &Req) -> Answer {
    let b: Boxes = req.json()?;
    let f = frame(app, m, false)?;
    check_boxes(&b.digits, f.size)?;
    let model = registry::load_current_model(&app.cfg()).map_err(internal)?;
    let c = crops(&f, &b.digits, Some(model.input_size()))?;
    let preds = model.predict_batch(&c).map_err(|e| internal(e.into()))?;
    let out: Vec<_> = preds
        .iter()
        .map(|p| serde_json::json!({ "value": p.tenths.to_string(), "confidence": p.confidence }))
        .collect();
    Ok(Resp::json(&out))
}

/// `POST /api/meters/{name}/propose`: digit boxes found on the frame, as
/// `meter roi --auto` finds them (as many as the counter has).
pub fn propose(app: &App, m: &MeterConfig, _req: &Req) -> Answer {
    let f = frame(app, m, false)?;
    let aligned = aligned_frame(&f.frame, &f.alignment);
    let p = propose_digits(&aligned, Some(digit_count(m))).ok_or_else(|| {
        Resp::error(
            422,
            "no row of digit-like glyphs found: set the boxes by hand",
        )
    })?;
    Ok(Resp::json(&serde_json::json!({ "digits": p.digits })))
}

/// `POST /api/meters/{name}/boxes {"digits": [...], "marks": [[x,y], ...],
/// "rotate": deg}`: validates, keeps a backup of the config, rewrites the
/// meter's table (comments and other meters kept) and uses it.
pub fn save(app: &App, m: &MeterConfig, req: &Req) -> Answer {
    let b: Boxes = req.json()?;
    let f = frame(app, m, false)?;
    let n = digit_count(m);
    if b.digits.len() != n {
        return Err(Resp::error(
            400,
            &format!(
                "{} boxes given; the counter has {n} digits (change `digits` in the config for another counter)",
                b.digits.len()
            ),
        ));
    }
    check_boxes(&b.digits, f.size)?;
    if !b.marks.is_empty() && b.marks.len() != m.geometry.marks.len() {
        return Err(Resp::error(
            400,
            &format!(
                "{} mark places given; the meter has {} marks",
                b.marks.len(),
                m.geometry.marks.len()
            ),
        ));
    }
    if let Some(r) = b.rotate {
        if !(r.is_finite() && (-360.0..=360.0).contains(&r)) {
            return Err(Resp::error(
                400,
                &format!("rotate {r}: degrees within ±360"),
            ));
        }
    }
    let cfg = app.cfg();
    let path = &cfg.path;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Resp::error(500, &format!("reading config {}: {e}", path.display())))?;
    let new_text = edit_meter(&text, &m.name, &b)
        .map_err(|e| Resp::error(500, &format!("config {}: {e}", path.display())))?;
    // The backup, next to the config (its folder is the config's own).
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "meter.toml".into());
    let backup = path.with_file_name(format!("{file_name}.{stamp}.bak"));
    meter_service::files::write_atomic(&backup, text.as_bytes())
        .map_err(|e| Resp::error(500, &format!("writing backup {}: {e}", backup.display())))?;
    meter_service::files::write_atomic(path, new_text.as_bytes())
        .map_err(|e| Resp::error(500, &format!("writing config {}: {e}", path.display())))?;
    match ResolvedConfig::load(path) {
        Ok(new) => {
            if let (Some(service), Ok(meter)) = (&app.service, new.meter(&m.name)) {
                service.set_meter(meter.clone());
            }
            app.set_cfg(new);
            app.editor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&m.name);
            log::info!(
                "web: meter {} boxes saved to {} (backup {})",
                m.name,
                path.display(),
                backup.display()
            );
            Ok(Resp::json(&serde_json::json!({
                "saved": path.display().to_string(),
                "backup": backup.display().to_string(),
                "running": app.running,
            })))
        }
        Err(e) => {
            // Never leave a config that does not load.
            let _ = meter_service::files::write_atomic(path, text.as_bytes());
            Err(Resp::error(
                400,
                &format!("{e:#}; the config was left as it was"),
            ))
        }
    }
}

/// `text` with meter `name`'s `digits` (and `counter` dropped), mark places
/// and rotation replaced; everything else as written.
fn edit_meter(text: &str, name: &str, b: &Boxes) -> anyhow::Result<String> {
    use toml_edit::{value, Array, DocumentMut, Item, Value};
    let mut doc: DocumentMut = text.parse()?;
    let meters = doc
        .get_mut("meter")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| anyhow::anyhow!("no [[meter]] tables"))?;
    let table = meters
        .iter_mut()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
        .ok_or_else(|| anyhow::anyhow!("no [[meter]] named {name:?}"))?;
    let mut digits = Array::new();
    for d in &b.digits {
        let mut one = Array::new();
        for v in d {
            one.push(i64::from(*v));
        }
        digits.push(Value::Array(one));
    }
    table.insert("digits", value(digits));
    table.remove("counter");
    if let Some(r) = b.rotate {
        table.insert("rotate", value(r));
    }
    if !b.marks.is_empty() {
        let marks = table
            .get_mut("marks")
            .and_then(Item::as_array_mut)
            .ok_or_else(|| anyhow::anyhow!("meter {name:?}: `marks` is not an inline array"))?;
        for (k, place) in b.marks.iter().enumerate() {
            let mark = marks
                .get_mut(k)
                .and_then(Value::as_inline_table_mut)
                .ok_or_else(|| anyhow::anyhow!("meter {name:?}: marks[{k}] is not a table"))?;
            mark.insert("x", i64::from(place[0]).into());
            mark.insert("y", i64::from(place[1]).into());
        }
    }
    Ok(doc.to_string())
}

const EDITOR_JS: &str = r#"
const $ = id => document.getElementById(id);
const svg = $('boxes'), NAME = svg.dataset.meter, API = '/api/meters/' + encodeURIComponent(NAME);
let drag = null;
function pt(ev) { const p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY; return p.matrixTransform(svg.getScreenCTM().inverse()); }
function rects(kind) { return [...svg.querySelectorAll('rect.' + kind)]; }
function boxOf(r) { return ['x','y','width','height'].map(a => Math.round(+r.getAttribute(a))); }
function setBox(r, b) { ['x','y','width','height'].forEach((a, i) => r.setAttribute(a, b[i])); }
svg.addEventListener('pointerdown', ev => {
  const r = ev.target; if (r.tagName !== 'rect') return;
  const p = pt(ev), b = boxOf(r);
  const resize = r.classList.contains('digit') && p.x > b[0] + b[2] - 8 && p.y > b[1] + b[3] - 8;
  drag = {r, p0: p, b0: b, resize}; svg.setPointerCapture(ev.pointerId); ev.preventDefault();
});
svg.addEventListener('pointermove', ev => {
  if (!drag) return;
  const p = pt(ev), dx = Math.round(p.x - drag.p0.x), dy = Math.round(p.y - drag.p0.y), b = drag.b0.slice();
  if (drag.resize) { b[2] = Math.max(2, b[2] + dx); b[3] = Math.max(2, b[3] + dy); } else { b[0] = Math.max(0, b[0] + dx); b[1] = Math.max(0, b[1] + dy); }
  setBox(drag.r, b);
});
svg.addEventListener('pointerup', () => { if (drag) { drag = null; preview(); } });
function state() {
  const rot = $('rotate').value;
  return {digits: rects('digit').map(boxOf), marks: rects('mark').map(r => boxOf(r).slice(0, 2)), rotate: rot === '' ? null : +rot};
}
async function preview() {
  const s = state(), row = $('reads'); row.innerHTML = '';
  try {
    const reads = await post(API + '/preview', s);
    s.digits.forEach((b, k) => {
      const f = document.createElement('figure'), i = document.createElement('img'), c = document.createElement('figcaption');
      i.src = API + '/crop.png?box=' + b.join(','); c.textContent = reads[k].value + ' ' + Math.round(reads[k].confidence * 100) + '%';
      f.append(i, c); row.append(f);
    });
    $('msg').textContent = '';
  } catch (e) { $('msg').textContent = e.message; }
}
$('propose').addEventListener('click', async () => {
  try { const p = await post(API + '/propose'); rects('digit').forEach((r, k) => p.digits[k] && setBox(r, p.digits[k])); preview(); }
  catch (e) { $('msg').textContent = e.message; }
});
$('save').addEventListener('click', async () => {
  try { const j = await post(API + '/boxes', state()); $('msg').textContent = 'saved to ' + j.saved + ' (backup ' + j.backup + ')' + (j.running ? '; the next reading uses them' : ''); }
  catch (e) { $('msg').textContent = e.message; }
});
preview();
"#;

/// `/editor/{name}`: the box editor (`?fresh=1` reads a new frame).
pub fn page(app: &App, m: &MeterConfig, req: &Req) -> Answer {
    let fresh = req.query.get("fresh").is_some_and(|v| v == "1");
    let f = frame(app, m, fresh)?;
    let boxes = m.geometry.regions().map(|r| r.boxes()).unwrap_or_default();
    let marks: Vec<[u32; 4]> = m
        .geometry
        .marks
        .iter()
        .map(|s| {
            let (w, h) = image::image_dimensions(&s.image).unwrap_or((16, 16));
            [s.x, s.y, w, h]
        })
        .collect();
    let (w, h) = f.size;
    let rects: String = marks
        .iter()
        .map(|b| ("mark", b))
        .chain(boxes.iter().map(|b| ("digit", b)))
        .map(|(class, b)| {
            format!(
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                b[0], b[1], b[2], b[3]
            )
        })
        .collect();
    let body = format!(
        "<style>#stage{{position:relative;display:inline-block}}#stage img{{display:block;max-width:100%;height:auto}}\
         #boxes{{position:absolute;left:0;top:0;width:100%;height:100%;touch-action:none}}\
         rect.digit{{fill:#28ff2822;stroke:#28ff28;stroke-width:2;cursor:move}}\
         rect.mark{{fill:#00c8ff22;stroke:#00c8ff;stroke-width:2;cursor:move}}\
         #reads{{display:flex;gap:6px}}#reads img{{height:64px;image-rendering:pixelated;display:block}}\
         figure{{margin:0;text-align:center}}</style>\
         <p>Drag a box to move it, its lower-right corner to resize it; blue: reference marks. {warn}</p>\
         <div id=\"stage\"><img src=\"/api/meters/{s}/editor.jpg\" width=\"{w}\" height=\"{h}\" alt=\"aligned frame\">\
         <svg id=\"boxes\" data-meter=\"{n}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">{rects}</svg></div>\
         <div id=\"reads\"></div><p><label>rotate (degrees) <input id=\"rotate\" type=\"number\" step=\"0.1\" value=\"{rot}\"></label> \
         <button id=\"propose\">Propose</button> <button id=\"save\">Save</button> \
         <a href=\"/editor/{s}?fresh=1\">new frame</a></p><p class=\"msg\" id=\"msg\"></p><script>{EDITOR_JS}</script>",
        warn = if f.aligned {
            ""
        } else {
            "<b class=\"err\">The marks were not found on this frame: it is shown with the config's rotation only.</b>"
        },
        s = seg(&m.name),
        n = esc(&m.name),
        rot = m.geometry.rotate,
    );
    Ok(Resp::html(layout(
        &format!("Box editor: {}", m.name),
        &body,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_one_meter_and_keeps_the_rest() {
        let text = "# my meters\n[[meter]]\nname = \"a\" # first\nsource = \"x\"\nmarks = [{ image = \"m.png\", x = 1, y = 2 }]\ncounter = { window = [0, 0, 10, 10], count = 2 }\n\n[[meter]]\nname = \"b\"\ndigits = [[1, 1, 1, 1]]\n";
        let b = Boxes {
            digits: vec![[1, 2, 3, 4], [5, 6, 7, 8]],
            marks: vec![[9, 10]],
            rotate: Some(1.5),
        };
        let out = edit_meter(text, "a", &b).unwrap();
        assert!(
            out.contains("# my meters") && out.contains("# first"),
            "{out}"
        );
        assert!(
            out.contains("digits = [[1, 2, 3, 4], [5, 6, 7, 8]]"),
            "{out}"
        );
        assert!(!out.contains("counter"), "{out}");
        assert!(out.contains("x = 9") && out.contains("y = 10"), "{out}");
        assert!(out.contains("rotate = 1.5"), "{out}");
        assert!(
            out.contains("name = \"b\"\ndigits = [[1, 1, 1, 1]]"),
            "{out}"
        );
        assert!(edit_meter(text, "zz", &b).is_err());
    }
}
