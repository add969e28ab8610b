/* rnncourse site fixes, loaded on every page by book/_ext/site_fixes.py.
 *
 * Sidebar toggles. Each page carries two buttons of each kind: the pydata theme's header
 * buttons come first and are hidden by sphinx-book-theme (0 x 0), the book theme's visible
 * buttons sit in the article header. Both themes bind their click handlers with
 * document.querySelector(".primary-toggle"), i.e. to the hidden button alone, so the
 * visible hamburger and "On this page" buttons did nothing at any width. A click on any
 * other toggle is handed to the first one of its kind, where the themes' handlers live: the
 * book theme collapses the sidebar on wide screens (>= 992 px), the pydata theme opens the
 * sidebar as a dialog on narrow ones (Escape or a click beside it closes it).
 */
(function () {
  "use strict";

  function forwardToggles(selector) {
    const toggles = Array.from(document.querySelectorAll(selector));
    const first = toggles[0];
    toggles.slice(1).forEach((button) => {
      button.addEventListener(
        "click",
        (event) => {
          event.preventDefault();
          event.stopImmediatePropagation();
          first.click();
          button.blur();
        },
        true,
      );
    });
  }

  function init() {
    forwardToggles(".primary-toggle");
    forwardToggles(".secondary-toggle");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
