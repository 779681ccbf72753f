/* Type-ahead pickers: every <select class="crm-lookup" data-lookup-url="..."> asks the server
   (at most 20 matches, in the user's scope) instead of holding a whole table. */
$(function () {
  $("select.crm-lookup").each(function () {
    var $el = $(this);
    $el.select2({
      width: "100%", allowClear: true, minimumInputLength: 0,
      placeholder: $el.data("placeholder") || "",
      ajax: {
        url: $el.data("lookup-url"), dataType: "json", delay: 250,
        data: function (params) { return {q: params.term || ""}; },
        processResults: function (data) { return {results: data.result || []}; }
      }
    });
  });
});
