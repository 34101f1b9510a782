/**
 * The portal's one stylesheet, served at /static/portal.css. Kept as a module (not a file
 * beside the build output) so the compiled server carries it without a copy step. System
 * fonts, no framework; contrast at least 4.5:1 against the background; a single column on a
 * phone; focus always visible.
 */
export const STYLESHEET = `
:root {
  --fg: #1d232b; --muted: #4a5563; --bg: #ffffff; --panel: #f4f6f8; --line: #c9d1da;
  --accent: #0b5cad; --accent-fg: #ffffff; --bad: #a3191b; --bad-bg: #fdeceb; --good: #1e6b32;
  --warn-bg: #fff4d6; --warn-line: #b38300; --focus: #f2a900;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
  line-height: 1.45;
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem 1rem; }
.skip:focus { left: .5rem; z-index: 10; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .6rem 1rem; background: var(--fg); color: #fff; }
header.top a { color: #fff; text-decoration: none; }
header.top .brand { font-weight: 700; font-size: 1.1rem; }
header.top nav { display: flex; flex-wrap: wrap; gap: 1rem; }
header.top nav a[aria-current="page"] { text-decoration: underline; text-underline-offset: .3rem; }
header.top .who { margin-left: auto; display: flex; align-items: center; gap: .75rem; }
header.top .who button { background: transparent; color: #fff; border: 1px solid #fff; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1rem 0 .4rem; }
.muted, .hint { color: var(--muted); }
.hint { font-size: .9rem; margin: .1rem 0 .3rem; }
button, .button { font: inherit; padding: .45rem 1rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary { background: var(--bg); color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
input, select, textarea { font: inherit; padding: .4rem .5rem; border: 1px solid var(--muted); border-radius: 4px; width: 100%; max-width: 32rem; background: var(--bg); color: var(--fg); }
label { font-weight: 600; display: block; }
.field { margin: 0 0 1rem; }
.field.invalid input, .field.invalid select { border: 2px solid var(--bad); }
.error { color: var(--bad); font-weight: 600; margin: .25rem 0; }
.alert { border-left: 4px solid var(--bad); background: var(--bad-bg); padding: .6rem .8rem; margin: 0 0 1rem; }
.notice { border-left: 4px solid var(--warn-line); background: var(--warn-bg); padding: .6rem .8rem; margin: 1rem 0; }
.info { border-left: 4px solid var(--accent); background: var(--panel); padding: .6rem .8rem; margin: 0 0 1rem; }
fieldset { border: 1px solid var(--line); border-radius: 4px; padding: 1rem; margin: 0 0 1rem; }
legend { font-weight: 700; padding: 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0 0 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .6rem; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 30rem; margin: .3rem 0 .8rem; }
pre.stderr { border-left: 4px solid var(--bad); }
.argv code { background: var(--panel); border: 1px solid var(--line); border-radius: 3px; padding: 0 .25rem; margin-right: .25rem; }
.tags { display: inline-flex; flex-wrap: wrap; gap: .3rem; padding: 0; margin: 0; list-style: none; }
.tags a, .tag { background: var(--panel); border: 1px solid var(--line); border-radius: 999px; padding: 0 .5rem; font-size: .85rem; text-decoration: none; }
.state { font-weight: 700; text-transform: capitalize; }
.tone-good { color: var(--good); }
.tone-bad { color: var(--bad); }
.tone-attention { color: var(--fg); background: var(--warn-bg); border: 1px solid var(--warn-line); border-radius: 3px; padding: 0 .3rem; }
.tone-active { color: var(--accent); }
.tone-idle { color: var(--muted); }
.cards { list-style: none; padding: 0; display: grid; gap: .75rem; }
.cards li { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
.cards h2 { margin: 0 0 .3rem; font-size: 1.1rem; }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin: 0 0 1rem; }
form.filters .field { margin: 0; flex: 1 1 12rem; }
form.filters p { flex-basis: 100%; margin: 0; }
form.inline { display: inline; }
label.check { font-weight: normal; }
label.check input { width: auto; }
textarea.copy { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; max-width: none; }
.actions { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
.host { border: 1px solid var(--line); border-radius: 6px; padding: .25rem 1rem .5rem; margin: 0 0 1rem; }
ol.steps { padding-left: 1.4rem; }
ol.steps li { margin: 0 0 .75rem; }
.login { max-width: 24rem; margin: 3rem auto; }
article.record { border: 1px solid var(--line); border-radius: 6px; padding: .25rem 1rem .5rem; margin: 0 0 1rem; }
article.record h2 { font-size: 1.05rem; margin: .5rem 0; }
dl.data { border-top: 1px solid var(--line); padding-top: .5rem; }
details.hash summary { cursor: pointer; }
details.hash > code { display: block; overflow-wrap: anywhere; }
@media (max-width: 40rem) {
  header.top .who { margin-left: 0; }
  dl.facts { grid-template-columns: 1fr; }
  table.wide thead { display: none; }
  table.wide td { display: block; border: 0; padding: .15rem .5rem; }
  table.wide tr { display: block; border-bottom: 1px solid var(--line); padding: .4rem 0; }
}
`;
