// The staff pages' one script: "Copy link" buttons beside tracking links.
// The pages are complete without it (the link is plain, selectable text);
// the buttons are hidden in the markup and shown only where this runs.
(function () {
  "use strict";
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok;
  }
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var status = button.nextElementSibling;
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy");
      function said(message) {
        if (status) status.textContent = message;
      }
      function fallback() {
        said(fallbackCopy(text) ? "Copied" : "Copy failed: select the link and copy it");
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { said("Copied"); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
