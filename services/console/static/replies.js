// A reply template chosen on a ticket's form is copied into its text, to be edited before
// sending. Without this script the form still works: the server sends the template's text
// when the officer wrote none.
document.addEventListener("change", function (event) {
  var select = event.target;
  if (!(select instanceof HTMLSelectElement) || !select.dataset.fills) return;
  var option = select.options[select.selectedIndex];
  var text = document.getElementById(select.dataset.fills);
  if (text && option && option.dataset.text) {
    text.value = option.dataset.text;
    text.focus();
  }
});
