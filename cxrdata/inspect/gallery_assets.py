"""The gallery page's style sheet and script, inlined into every page (no file, font or script is fetched).

The script reads and writes the URL fragment, so a filtered view is a link: ``page.html#split=test&class=
Nodule&q=effusion&hide=Edema,Nodule&lut=0&pin=<record id>|<sentence index>``. Facets: ``split``, ``class``,
``location``, ``reader`` (a reader also hides the other readers' boxes); ``q``: every word in the record's
text; ``hide``: legend keys whose shapes are hidden; ``boxes``/``gaussians``/``lut``/``heatmap``: ``0``
hides that layer; ``pin``: a sentence whose boxes stay highlighted. The count shown is ``#shown`` (also
``body[data-shown]``).
"""

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; background: #f6f4ee; color: #222; margin: 16px; }
form { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin: 8px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }
figure { margin: 0; background: #101010; color: #eee; border-radius: 4px; overflow: hidden; }
figure[hidden] { display: none; }
.frame { position: relative; width: 100%; }
.frame > img.thumb, .frame > svg { position: absolute; inset: 0; width: 100%; height: 100%; }
.frame > img.layer { position: absolute; pointer-events: none; }
figcaption { padding: 6px 8px; } .meta { color: #999; font-size: 11px; word-break: break-all; }
figcaption ul { margin: 2px 0; padding-left: 16px; } figcaption li[data-marks] { cursor: pointer; }
figcaption li.pinned, figcaption li[data-marks]:hover { color: #fff; text-decoration: underline; }
.legend button { font: inherit; border: 1px solid #ccc; background: #fff; margin: 0 6px 4px 0; cursor: pointer; }
.legend button.off { opacity: 0.35; text-decoration: line-through; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
svg .off { display: none; }
svg rect.hl { stroke-width: 4px; }
figure.focus svg rect:not(.hl) { opacity: 0.2; }
body.no-boxes svg rect, body.no-gaussians svg ellipse { display: none; }
body.no-lut img.lut, body.no-heatmap img.heatmap { display: none; }
.warning { color: #a00; }
"""

SCRIPT = """
(() => {
  const form = document.getElementById('filters');
  const figures = Array.from(document.querySelectorAll('figure[data-id]'));
  const facets = ['split', 'class', 'location', 'reader'];
  const layers = ['boxes', 'gaussians', 'lut', 'heatmap'];
  const hidden = new Set();
  let pin = '';
  const field = (name) => form.elements.namedItem(name);
  const valuesOf = (figure, name) => name === 'split' ? [figure.dataset.split] : JSON.parse(figure.dataset[name]);

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const name of [...facets, 'q']) {
      const el = field(name);
      if (el) el.value = params.get(name) || '';
      if (el && el.value !== (params.get(name) || '')) el.value = '';  // a value the page does not offer
    }
    for (const name of layers) { const el = field(name); if (el) el.checked = params.get(name) !== '0'; }
    hidden.clear();
    for (const key of (params.get('hide') || '').split(',')) if (key) hidden.add(key);
    pin = params.get('pin') || '';
  }

  function writeHash() {
    const params = new URLSearchParams();
    for (const name of [...facets, 'q']) { const el = field(name); if (el && el.value) params.set(name, el.value); }
    for (const name of layers) { const el = field(name); if (el && !el.checked) params.set(name, '0'); }
    if (hidden.size) params.set('hide', Array.from(hidden).join(','));
    if (pin) params.set('pin', pin);
    try { history.replaceState(null, '', '#' + params.toString()); } catch (e) { /* file: pages may refuse */ }
  }

  function highlight(item, on) {
    const figure = item.closest('figure');
    const wanted = item.dataset.marks.split(' ');
    for (const shape of figure.querySelectorAll('rect[data-i]')) {
      shape.classList.toggle('hl', on && wanted.includes(shape.dataset.i));
    }
    figure.classList.toggle('focus', on);
  }

  function applyPin() {
    for (const item of document.querySelectorAll('li.pinned')) {
      item.classList.remove('pinned');
      highlight(item, false);
    }
    const cut = pin.lastIndexOf('|');
    if (cut < 0) return;
    const figure = figures.find((f) => f.dataset.id === pin.slice(0, cut));
    const item = figure && figure.querySelectorAll('li[data-marks]')[Number(pin.slice(cut + 1))];
    if (item) { item.classList.add('pinned'); highlight(item, true); }
  }

  function apply() {
    const chosen = Object.fromEntries(facets.map((name) => [name, field(name) ? field(name).value : '']));
    const words = (field('q').value || '').toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    for (const figure of figures) {
      const visible = facets.every((name) => !chosen[name] || valuesOf(figure, name).includes(chosen[name]))
        && words.every((word) => figure.dataset.text.includes(word));
      figure.hidden = !visible;
      shown += visible ? 1 : 0;
      for (const shape of figure.querySelectorAll('svg [data-key]')) {
        const reader = shape.dataset.reader;
        const otherReader = chosen.reader && reader !== undefined && reader !== chosen.reader;
        shape.classList.toggle('off', hidden.has(shape.dataset.key) || Boolean(otherReader));
      }
    }
    for (const button of document.querySelectorAll('.legend button')) {
      button.classList.toggle('off', hidden.has(button.dataset.key));
    }
    for (const name of layers) {
      const el = field(name);
      document.body.classList.toggle('no-' + name, Boolean(el) && !el.checked);
    }
    document.getElementById('shown').textContent = String(shown);
    document.body.dataset.shown = String(shown);
  }

  form.addEventListener('input', () => { apply(); writeHash(); });
  form.addEventListener('submit', (event) => event.preventDefault());
  for (const button of document.querySelectorAll('.legend button')) {
    button.addEventListener('click', () => {
      const key = button.dataset.key;
      if (hidden.has(key)) hidden.delete(key); else hidden.add(key);
      apply(); writeHash();
    });
  }
  for (const item of document.querySelectorAll('li[data-marks]')) {
    item.addEventListener('mouseenter', () => highlight(item, true));
    item.addEventListener('mouseleave', () => highlight(item, item.classList.contains('pinned')));
    item.addEventListener('click', () => {
      const figure = item.closest('figure');
      const index = Array.from(figure.querySelectorAll('li[data-marks]')).indexOf(item);
      const key = figure.dataset.id + '|' + index;
      pin = pin === key ? '' : key;
      applyPin(); writeHash();
    });
  }
  window.addEventListener('hashchange', () => { readHash(); apply(); applyPin(); });
  readHash(); apply(); applyPin();
})();
"""
