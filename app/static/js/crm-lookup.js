/* Type-ahead pickers: every <select class="crm-lookup" data-lookup-url="..."> asks the server
   (at most 20 matches, in the user's scope) instead of holding a whole table. A contact picker
   (data-lookup-customer="customer") asks for the contacts of the customer chosen in the same form.
   window.crmLookup(root) sets up the pickers inside root (rows added to a form later too). */
window.crmLookup = function (root) {
  $(root || document).find("select.crm-lookup").not(".select2-hidden-accessible").each(function () {
    var $el = $(this), $form = $el.closest("form");
    $el.select2({
      width: "100%", allowClear: !$el.data("multiple"), minimumInputLength: 0,
      placeholder: $el.data("placeholder") || "",
      ajax: {
        url: $el.data("lookup-url"), dataType: "json", delay: 250,
        data: function (params) {
          var args = {q: params.term || ""}, dep = $el.data("lookup-customer");
          if (dep) { args.customer = $form.find("[name='" + dep + "']").val() || ""; }
          return args;
        },
        processResults: function (data) { return {results: data.result || []}; }
      }
    });
  });
};
$(function () {
  window.crmLookup(document);
  /* repeatable rows (the interaction form's to-dos): "add a row" clones the last row blank */
  $(document).on("click", "[data-add-row]", function () {
    var $table = $($(this).data("add-row")), $last = $table.find("tbody tr").last();
    var n = $table.find("tbody tr").length, $row = $last.clone();
    $row.find(".select2-container").remove();
    $row.find("input, select").each(function () {
      var $f = $(this);
      ["name", "id"].forEach(function (a) {
        if ($f.attr(a)) { $f.attr(a, $f.attr(a).replace(/-\d+-/, "-" + n + "-")); }
      });
      $f.removeClass("select2-hidden-accessible").removeAttr("data-select2-id aria-hidden tabindex");
      if ($f.is("select")) { $f.html('<option value=""></option>'); } else { $f.val(""); }
    });
    $row.find(".crm-row-no").text(n + 1);
    $table.find("tbody").append($row);
    window.crmLookup($row);
  });
});
