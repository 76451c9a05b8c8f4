// Progressive enhancement only: every page works without it.
// 1. A oneOf choice shows only the chosen option's fields (all are shown without script;
//    the server reads only the chosen one's).
// 2. "Copy" buttons copy the text of the element they name.
// 3. A form with data-confirm asks before it is sent (deleting, rotating a secret).
(function () {
  function syncChoice(select) {
    var group = document.querySelectorAll('[data-choice-of="' + select.name + '"]');
    group.forEach(function (box) {
      var chosen = box.getAttribute('data-choice') === select.value;
      box.hidden = !chosen;
      box.querySelectorAll('input, select, textarea').forEach(function (input) { input.disabled = !chosen; });
    });
  }
  function init(root) {
    root.querySelectorAll('select[data-choice-select]').forEach(function (select) {
      syncChoice(select);
      select.addEventListener('change', function () { syncChoice(select); });
    });
    root.addEventListener('submit', function (event) {
      var message = event.target.getAttribute && event.target.getAttribute('data-confirm');
      if (message && !window.confirm(message)) { event.preventDefault(); }
    });
    root.querySelectorAll('button[data-copy]').forEach(function (button) {
      button.hidden = false;
      button.addEventListener('click', function () {
        var target = document.getElementById(button.getAttribute('data-copy'));
        if (target && navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent).then(function () { button.textContent = 'Copied'; });
        }
      });
    });
  }
  document.addEventListener('DOMContentLoaded', function () { init(document); });
})();
