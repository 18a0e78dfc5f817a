document.getElementById('app').textContent = 'gp';
